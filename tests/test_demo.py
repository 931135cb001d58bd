"""``moodlens demo``: the shipped model on the photo that ships in the package (no download, no extra)."""

from __future__ import annotations

import json

import cv2
from typer.testing import CliRunner

from moodlens.cli import app


def test_demo_finds_the_astronaut_and_nothing_in_her_suit(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--no-serve"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "results.json").read_text())
    faces = {image["filename"]: image["faces"] for image in data["images"]}
    assert len(faces["astronaut.png"]) == 1 and faces["spacesuit.png"] == []
    assert data["model"]["name"] in result.output and "astronaut.png (512x512): 1 face\n" in result.output
    annotated = cv2.imread(str(tmp_path / "annotated_astronaut.png"))
    assert annotated.shape == (512, 512, 3)
