"""One JSON shape for image results in ``moodlens analyze --json``, ``POST /api/v1/analyze`` and ``moodlens demo``;
folder analysis reports what it skipped and why; the schema table in the docs is generated from the models."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import skimage.data
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from web_access import ACCESS, OPERATOR

from moodlens.cli import app as cli
from moodlens.recognition.classifier import default_model_path
from moodlens.recognition.schema import ImageResults, schema_markdown

ROOT = Path(__file__).resolve().parents[1]
SHA256 = __import__("hashlib").sha256(default_model_path().read_bytes()).hexdigest()


def shape(value):
    """The keys of a JSON value, recursively (dict keys sorted; a list by its first item)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items()) if k not in ("scores",)}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("event-photos")
    cv2.imwrite(str(folder / "astronaut.jpg"), skimage.data.astronaut()[:, :, ::-1])
    (folder / "broken.jpg").write_bytes(b"GIF89a not really")
    (folder / "talks").mkdir()
    (folder / "talks" / "keynote.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    (folder / "notes.txt").write_text("seating plan")
    return folder


def test_cli_api_and_demo_write_the_same_shape(folder, tmp_path):
    r = CliRunner().invoke(cli, ["analyze", str(folder), "--json", str(tmp_path / "cli.json")])
    assert r.exit_code == 0, r.output
    from_cli = json.loads((tmp_path / "cli.json").read_text())

    from moodlens.web.app import create_app

    with TestClient(create_app(workers=1, access=ACCESS), headers=OPERATOR) as client:
        jpeg = (folder / "astronaut.jpg").read_bytes()
        from_api = client.post("/api/v1/analyze", files=[("files", ("astronaut.jpg", jpeg, "image/jpeg")),
                                                         ("files", ("notes.txt", b"hello", "text/plain"))]).json()

    from moodlens.demo import run_demo

    from_demo = run_demo(tmp_path / "demo")
    assert json.loads((tmp_path / "demo" / "results.json").read_text()) == from_demo
    for data in (from_cli, from_api, from_demo):
        ImageResults.model_validate(data)  # every one is an ImageResults document
        assert data["model"]["sha256"] == SHA256 and data["model"]["name"]
    assert shape(from_cli["images"]) == shape(from_api["images"]) == shape(from_demo["images"])
    assert set(from_cli) == set(from_api) == {"model", "images", "errors"}
    api_error = dict(from_api["errors"][0])
    assert api_error.pop("status") == 415  # the one API-only field
    assert set(api_error) == set(from_cli["errors"][0])


def test_folder_analysis_reports_what_it_skipped_and_why(folder, tmp_path):
    r = CliRunner().invoke(cli, ["analyze", str(folder), "--json", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    assert "1 image analysed, 3 skipped: 1 video (use `moodlens video`), 1 other file, 1 unreadable image" in r.output
    assert "keynote.mp4: a video: analyse it with `moodlens video FILE`" in r.output
    errors = {Path(e["filename"]).name: e for e in json.loads((tmp_path / "r.json").read_text())["errors"]}
    assert {n: e["kind"] for n, e in errors.items()} == {"keynote.mp4": "video", "notes.txt": "not_image",
                                                         "broken.jpg": "invalid"}
    assert "moodlens video" in errors["keynote.mp4"]["reason"] and "GIF" in errors["broken.jpg"]["reason"]
    # A video named on the command line is pointed to `moodlens video` too; nothing analysed: exit 1.
    r = CliRunner().invoke(cli, ["analyze", str(folder / "talks" / "keynote.mp4")])
    assert r.exit_code == 1 and "0 images analysed, 1 skipped: 1 video" in r.output


def test_output_paths_that_cannot_be_written_are_clear_errors_before_analysis(folder, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    cases = [("--json", tmp_path, "a folder, not a file"), ("--json", a_file / "r.json", "is a file, not a folder"),
             ("--csv", a_file / "faces.csv", "is a file, not a folder"), ("--out", a_file, "a file, not a folder")]
    for option, path, message in cases:
        r = CliRunner().invoke(cli, ["analyze", str(folder), option, str(path)])
        assert r.exit_code == 1 and f"cannot write to {path}: " in r.output and message in r.output, r.output
        assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
        assert "astronaut.jpg" not in r.output  # refused before any photo was analysed
    # --json into a folder that does not exist yet: made, as for --csv and --out.
    r = CliRunner().invoke(cli, ["analyze", str(folder / "astronaut.jpg"), "--json", str(tmp_path / "new" / "r.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "new" / "r.json").read_text())["images"]


def test_cli_does_not_import_the_web_stack():
    code = ("import sys; from moodlens.recognition import schema; from moodlens.cli import recognize_cmds; "
            "print('fastapi' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_schema_docs_are_generated_from_the_models():
    doc = (ROOT / "docs" / "recognition.md").read_text()
    block = re.search(r"<!-- image-results-schema: start.*?-->\n(.*?)<!-- image-results-schema: end -->", doc,
                      re.S)
    assert block, "docs/recognition.md lacks the generated schema block"
    assert block.group(1) == schema_markdown(), "run: python scripts/write_schema_docs.py"
    assert "| `kind` | string |" in block.group(1) and "**ImageResults**" in block.group(1)
