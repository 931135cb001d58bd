"""The classifier's two flip modes: the shipped flip-free graph is exactly what ``moodlens.train.flip_free``
derives from the shipped model, and ``flip="alternate"`` mirrors every other call."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import skimage.data

from moodlens.recognition.analyzer import Analyzer
from moodlens.recognition.classifier import EmotionClassifier, shipped_models
from moodlens.settings import VIDEO_FLIP, AnalysisSettings


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    """200 real faces (scikit-image's LFW subset), 48x48 uint8 like FER2013."""
    lfw = (skimage.data.lfw_subset()[:200] * 255).round().astype(np.uint8)
    return np.stack([cv2.resize(f, (48, 48), interpolation=cv2.INTER_CUBIC) for f in lfw])


def test_shipped_flip_free_graph_is_derived_from_the_shipped_model(tmp_path):
    onnx = pytest.importorskip("onnx")
    from moodlens.train.flip_free import without_flip_average, write_flip_free

    default = shipped_models()["default"]
    free = default.with_name("default.flipfree.onnx")
    for suffix in (".onnx", ".json"):
        shutil.copy(default.with_suffix(suffix), tmp_path / f"m{suffix}")
    card = json.loads((tmp_path / "m.json").read_text())
    del card["flip_free_graph"]
    (tmp_path / "m.json").write_text(json.dumps(card))
    derived = write_flip_free(tmp_path / "m.onnx")
    assert derived == tmp_path / "m.flipfree.onnx" and derived.read_bytes() == free.read_bytes()
    assert json.loads((tmp_path / "m.json").read_text())["flip_free_graph"] == "m.flipfree.onnx"
    assert EmotionClassifier(tmp_path / "m.onnx", flip="alternate").graph_path == derived
    assert "default.flipfree" not in shipped_models()  # part of the default model, not a model of its own
    with pytest.raises(ValueError, match="flip averaging"):
        without_flip_average(onnx.load(str(free)))


def test_flip_free_graph_and_its_mirror_average_to_the_shipped_output(faces):
    average = EmotionClassifier("default", threads=1)
    free = EmotionClassifier("default", threads=1, flip="alternate")
    assert free.graph_path.name == "default.flipfree.onnx" and average.graph_path == average.model_path
    both = (free.predict(faces) + free.predict(faces)) / 2  # the second call sees the mirror images
    shipped = average.predict(faces)
    # int8: each branch of the shipped graph has its own activation scales, so equal only to rounding.
    assert np.abs(both - shipped).max() < 0.05
    assert np.mean(both.argmax(1) == shipped.argmax(1)) >= 0.97


def test_alternate_mirrors_every_other_call(faces):
    free = EmotionClassifier("default", threads=1, flip="alternate")
    first, second, third = (free.predict(faces[:16]) for _ in range(3))
    np.testing.assert_array_equal(first, third)
    mirrored = EmotionClassifier("default", threads=1, flip="alternate")
    np.testing.assert_array_equal(mirrored.predict(faces[:16]), first)
    np.testing.assert_array_equal(mirrored.predict(faces[:16, :, ::-1]), first)  # mirror of a mirror
    assert not np.array_equal(first, second)


def test_a_model_without_a_flip_free_graph_runs_as_exported(faces):
    accurate = EmotionClassifier("accurate", threads=1, flip="alternate")
    assert accurate.graph_path == accurate.model_path
    reference = EmotionClassifier("accurate", threads=1).predict(faces[:8])
    for _ in range(2):
        np.testing.assert_allclose(accurate.predict(faces[:8]), reference, atol=1e-6)


def test_flip_mode_is_a_validated_setting():
    with pytest.raises(ValueError, match="flip"):
        AnalysisSettings(flip="sometimes")
    with pytest.raises(ValueError, match="flip"):
        EmotionClassifier("default", flip="sometimes")
    analyzer = Analyzer(AnalysisSettings().with_(flip=VIDEO_FLIP))
    assert analyzer.classifier.graph_path.name == "default.flipfree.onnx"
