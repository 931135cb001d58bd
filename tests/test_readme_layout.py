"""README.md's Layout section against the real tree: every file and folder it names exists where it says, and
every module and package of ``src/moodlens`` is named there.

The section is a code block of entries: a path at column 0 (``src/moodlens/``, ``benchmarks/``), entries under
the last such folder at column 2 (``card.py``, ``recognition/``), each followed by its description on the same
and the following more deeply indented lines. A name in a folder's description (``imageio.py``, ``routers/``) is
a file or folder inside it; a name in a file's description is next to that file.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "moodlens"
#: Lower-case file names with the suffixes the section names (``NAME.json`` is a pattern, not a file).
FILE_NAME = re.compile(r"(?<![\w./-])[a-z_][a-z0-9_.]*\.(?:py|sh|onnx|jpg)\b")
FOLDER_NAME = re.compile(r"(?<![\w./-])[a-z_]+/(?![\w/])")


def layout_entries(readme: str) -> dict[Path, str]:
    """Path of each entry of the Layout block -> its description (all of its lines)."""
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    entries: dict[Path, str] = {}
    top: Path | None = None
    current: Path | None = None
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        name, _, description = line.strip().partition(" ")
        if indent == 0:
            top = current = ROOT / name
        elif indent == 2:
            assert top is not None, line
            current = top / name
        else:  # a description continued
            assert current is not None, line
            entries[current] += " " + line.strip()
            continue
        entries[current] = description
    return entries


def _names(description: str) -> list[str]:
    return FILE_NAME.findall(description) + FOLDER_NAME.findall(description)


def test_every_name_in_the_layout_exists():
    entries = layout_entries((ROOT / "README.md").read_text(encoding="utf-8"))
    assert PACKAGE in entries and PACKAGE / "recognition" in entries
    missing = [str(path.relative_to(ROOT)) for path in entries if not path.exists()]
    for path, description in entries.items():
        folder = path if path.is_dir() else path.parent
        missing += [f"{name} (named by {path.relative_to(ROOT)})" for name in _names(description)
                    if not (folder / name).exists()]
    assert not missing, f"README.md's Layout names what is not there: {missing}"


def test_every_module_and_package_is_named_in_the_layout():
    entries = layout_entries((ROOT / "README.md").read_text(encoding="utf-8"))
    named: set[Path] = set(entries)
    for path, description in entries.items():
        folder = path if path.is_dir() else path.parent
        named |= {folder / name.rstrip("/") for name in _names(description)}
    unnamed = []
    for module in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" in module.parts:
            continue
        if module.name == "__init__.py":
            module = module.parent  # a package: its folder is named
        if module in named:
            continue
        folder = module.parent  # a folder named in its package's description (web/routers/): its modules by stem
        if folder in named and folder not in entries and re.search(rf"\b{module.stem}\b", entries[folder.parent]):
            continue
        unnamed.append(str(module.relative_to(PACKAGE)))
    assert not unnamed, f"README.md's Layout does not name: {unnamed}"
