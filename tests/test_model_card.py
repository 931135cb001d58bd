"""``ModelCard``: the shipped cards load and describe their files; broken cards fail with one line naming the
file; the README's model table holds the cards' numbers."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from moodlens.card import CardError, ModelCard, file_sha256
from moodlens.cli import app
from moodlens.recognition.classifier import EmotionClassifier, shipped_models
from moodlens.spec import EMOTIONS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cards() -> dict[str, ModelCard]:
    return {name: ModelCard.of_model(path) for name, path in shipped_models().items()}


def test_every_shipped_model_has_a_card_that_describes_it(cards):
    assert set(cards) == {"default", "accurate"}
    for name, card in cards.items():
        assert card.target == name and card.classes == EMOTIONS and card.precision == "int8"
        assert card.sha256 == file_sha256(shipped_models()[name]) == EmotionClassifier(name).sha256
        test = card.split("PublicTest")
        assert test.n == 3589 and sum(c.support for c in test.per_class.values()) == test.n
        assert card.history[-1].name == card.name and card.history[-1].accuracy == round(test.accuracy, 4)


def test_independent_evaluations_are_on_the_cards(cards):
    """Measured by others on 2026-12-02, recorded as given (not measured here, nothing tuned on them)."""
    expected = {"default": (0.7244, 0.7141, 0.747), "accurate": (0.7250, 0.7135, 0.789)}
    for name, (private_acc, private_f1, ckplus) in expected.items():
        private, posed = cards[name].independent_evaluations
        assert (private.accuracy, private.macro_f1, private.n) == (private_acc, private_f1, 3589)
        assert "PrivateTest" in private.data and "not the moodlens authors" in private.measured_by
        assert posed.accuracy == ckplus and "neutral" not in posed.classes and len(posed.classes) == 6
        assert {e.model_sha256 for e in (private, posed)} == {cards[name].sha256}
        assert str(private.date) == "2026-12-02"


def test_public_view_has_no_paths_or_commands(cards):
    for card in cards.values():
        public = card.public()
        text = json.dumps(public)
        assert "/" not in text and ".pt" not in text and ".onnx" not in text and "commands" not in text
        assert public["metrics"]["publictest"]["per_class"]["fear"]["f1"] == card.split().per_class["fear"].f1
        assert public["training"]["nets"][0]["epochs_total"] == card.training.nets[0].epochs_total


def test_save_then_load_gives_the_same_card(cards, tmp_path):
    card = cards["default"]
    path = card.save(tmp_path / "c.json")
    assert ModelCard.load(path) == card
    with pytest.raises(ValidationError):
        card.name = "other"  # frozen


def _broken(tmp_path: Path, change) -> Path:
    """A copy of the shipped default model whose card ``change`` edits (the raw JSON dict)."""
    model = tmp_path / "m.onnx"
    shutil.copy(shipped_models()["default"], model)
    data = json.loads(shipped_models()["default"].with_suffix(".json").read_text())
    change(data)
    model.with_suffix(".json").write_text(json.dumps(data))
    return model


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(classes=["happy", "sad"]), "classes"),
    (lambda d: d["metrics"]["publictest"].update(accuracy=1.5), "metrics.publictest.accuracy"),
    (lambda d: d["metrics"]["publictest"]["per_class"].pop("fear"), "per_class must list"),
    (lambda d: d.update(speeed={}), "speeed"),
    (lambda d: d["training"]["nets"][0]["config"].update(epochs="many"), "config.epochs"),
    (lambda d: d["independent_evaluations"][0].update(model_sha256="1" * 64), "another model file"),
    (lambda d: d.update(params=1), "sum of its networks"),
])
def test_a_broken_card_is_a_clear_error_naming_the_file(tmp_path, change, message):
    model = _broken(tmp_path, change)
    with pytest.raises(CardError, match=re.escape(message)) as err:
        EmotionClassifier(model)
    assert str(err.value).startswith(f"{model.with_suffix('.json')}: ")
    result = CliRunner().invoke(app, ["analyze", str(ROOT / "docs" / "img" / "web-live.jpg"), "--model", str(model)])
    assert result.exit_code == 1 and "Traceback" not in result.output and message in result.output


def test_a_card_beside_another_model_file_is_refused(tmp_path):
    model = _broken(tmp_path, lambda d: None)
    shutil.copy(shipped_models()["accurate"], model)
    with pytest.raises(CardError, match=r"m\.json: the card describes another model file"):
        EmotionClassifier(model)


def test_a_card_that_is_not_json_names_the_file(tmp_path):
    model = _broken(tmp_path, lambda d: None)
    model.with_suffix(".json").write_text("{not json")
    with pytest.raises(CardError, match=r"m\.json: the model card is not valid JSON"):
        ModelCard.of_model(model)


def test_a_model_without_a_card_still_runs(tmp_path):
    model = tmp_path / "bare.onnx"
    shutil.copy(shipped_models()["default"], model)
    clf = EmotionClassifier(model)
    assert clf.card is None and clf.name == "bare" and clf.sha256 == file_sha256(model)


def _readme_model_table() -> dict[str, dict[str, str]]:
    """The README's model table: row label -> {model name -> cell}."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## The model"):]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip(" `") for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != len(header):
            break
        rows[cells[0]] = dict(zip(header[1:], cells[1:], strict=True))
    return rows


def test_readme_model_table_matches_the_cards(cards):
    rows = _readme_model_table()
    for name, card in cards.items():
        test, (private, posed) = card.split("PublicTest"), card.independent_evaluations
        expected = {
            "FER2013 PublicTest accuracy (n = 3,589)": f"{test.accuracy:.4f}",
            "FER2013 PublicTest macro-F1": f"{test.macro_f1:.4f}",
            "FER2013 PrivateTest accuracy, independent (n = 3,589)": f"{private.accuracy:.4f}",
            "FER2013 PrivateTest macro-F1, independent": f"{private.macro_f1:.4f}",
            "CK+ accuracy, 6 posed expressions, independent": f"{posed.accuracy:.3f}",
            "expected calibration error (PublicTest)": f"{test.ece:.3f}",
            "faces/s, batch 64 (batch 1)": f"{card.speed.onnxruntime_faces_per_s_batch64:,} "
                                           f"({card.speed.onnxruntime_faces_per_s_batch1:,})",
            "size, precision": f"{shipped_models()[name].stat().st_size / 1e6:.1f} MB, {card.precision}",
        }
        for label, value in expected.items():
            assert rows[label][name].strip("*") == value, (label, name)
        per_class = " · ".join(f"{c} {m.f1:.2f}" for c, m in test.per_class.items())
        assert rows["per-class F1 (PublicTest)"][name] == per_class
