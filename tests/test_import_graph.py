"""No import cycles inside the package: every module under ``src/moodlens`` is parsed with ``ast`` and the graph
of its module-level imports must have no cycle.

What counts as an edge from module A to module B:

* ``import B`` / ``from B import x`` / relative forms, run when A is imported: at A's top level or inside a
  class body, ``if``, ``try`` or ``with`` at that level. ``from P import x`` where ``P.x`` is a module is an
  edge to ``P.x``, else to ``P``.
* Importing ``a.b.c`` runs the package ``a.b`` first, so it is also an edge to each package above B that is
  not also above A (A's own packages are already being imported when A runs).

Left out, on purpose: imports inside functions and methods (lazy: they run when called, after every module
involved has finished importing, so they cannot deadlock an import; the package uses them to keep OpenCV,
ONNX Runtime, torch and Ray out of commands that do not need them) and imports under ``if TYPE_CHECKING:``
(never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "moodlens"


def module_files(package: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, whether it is a package's ``__init__``), for every module under ``package``."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def _import_time_statements(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported (not in functions, not under TYPE_CHECKING)."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            found.extend(_import_time_statements(node.orelse))
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, field, []):
                    found.extend(_import_time_statements(child.body if isinstance(child, ast.ExceptHandler)
                                                         else [child]))
    return found


def _package_ancestors(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package that importing it imports (see the module doc)."""
    modules = module_files(package)

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        here = name if is_package else name.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in _import_time_statements(ast.parse(path.read_text(encoding="utf-8")).body):
            if isinstance(node, ast.Import):
                targets |= {known(alias.name) for alias in node.names}
                continue
            base = node.module or ""
            if node.level:
                above = here.split(".")[:len(here.split(".")) - node.level + 1]
                base = ".".join([*above, *([node.module] if node.module else [])])
            targets |= {known(f"{base}.{alias.name}") if f"{base}.{alias.name}" in modules else known(base)
                        for alias in node.names}
        direct = {t for t in targets if t is not None and t != name}
        graph[name] = direct | {a for t in direct for a in _package_ancestors(t) - _package_ancestors(name)
                                if a in modules and a != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None when it has none (depth-first search)."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert len(graph) > 80 and "moodlens.events.report" in graph["moodlens.events.report_html"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root / "pkg"


def test_cycles_through_relative_imports_and_packages_are_found(tmp_path):
    package = _write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from . import b\n",
        "pkg/b.py": "from pkg.sub.c import thing\n",
        "pkg/sub/__init__.py": "from .d import x\n",
        "pkg/sub/c.py": "thing = 1\n",
        "pkg/sub/d.py": "try:\n    import pkg.a\nexcept ImportError:\n    pass\n",
    })
    # b -> sub.c runs sub/__init__ first, which imports d, which imports a, which imports b.
    assert find_cycle(import_graph(package)) == ["pkg.a", "pkg.b", "pkg.sub", "pkg.sub.d", "pkg.a"]


def test_lazy_and_type_only_imports_are_not_cycles(tmp_path):
    package = _write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import f\n",
        "pkg/b.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\n"
                     "def f():\n    from pkg import a\n    return a\n"),
    })
    assert import_graph(package)["pkg.b"] == set()
    assert find_cycle(import_graph(package)) is None
