"""Analyzer and detectors on real photos: one smiling face, no person, a synthetic group, every input kind."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import skimage.data
from recognition_media import astronaut_bgr, group_photo, match_boxes

import moodlens
from moodlens.recognition.analyzer import Analyzer
from moodlens.recognition.annotate import BlurAnnotator, BoxAnnotator, LabelAnnotator, ScoreBarAnnotator, annotate
from moodlens.recognition.detect import DETECTORS, DetectorUnavailable, create_detector
from moodlens.recognition.imageio import ImageError, load_image
from moodlens.spec import EMOTION_COLORS_BGR, EMOTIONS


def _available(name: str) -> bool:
    try:
        create_detector(name)
    except DetectorUnavailable:
        return False
    return True


DETECTOR_NAMES = [pytest.param(n, marks=pytest.mark.skipif(not _available(n), reason=f"{n} not installed"))
                  for n in DETECTORS]


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer()


@pytest.fixture(scope="module", params=DETECTOR_NAMES)
def any_analyzer(request) -> Analyzer:
    return Analyzer(detector=request.param)


def test_astronaut_one_face_happy(analyzer):
    faces = analyzer.analyze(astronaut_bgr())
    assert len(faces) == 1
    x, y, w, h = faces[0].box
    assert 150 < x + w / 2 < 260 and 70 < y + h / 2 < 160  # her face, not the suit or the flag
    assert faces[0].emotion == "happy"  # needs a trained model: the placeholder cannot pass this


def test_photos_without_people_have_no_face(any_analyzer):
    for photo in (skimage.data.chelsea(), skimage.data.coffee(), skimage.data.rocket()):
        assert len(any_analyzer.analyze(photo, color="rgb")) == 0


def test_group_photo_every_face_found(any_analyzer):
    """Ten real faces at 100 down to 20 px wide: each found, box edges within 20 % of the face size."""
    widths = [100, 80, 64, 50, 40, 34, 30, 28, 24, 20]
    image, truth = group_photo(any_analyzer.detect, widths)
    faces = any_analyzer.analyze(image)
    iou, index = match_boxes(truth, faces.boxes)
    assert len(faces) == len(truth), f"found {len(faces)} faces, expected {len(truth)}; best IoUs {iou.round(2)}"
    assert len(set(index.tolist())) == len(truth)
    err = np.abs(faces.boxes[index].astype(float) - truth) / truth[:, 2:3]
    assert (err <= 0.2).all(), f"box errors relative to face width: {err.round(2)}"
    assert (iou >= 0.6).all(), iou.round(2)


def test_large_photo_is_scaled_for_detection_and_boxes_map_back(analyzer):
    small = astronaut_bgr()
    big = cv2.resize(small, (3000, 3000), interpolation=cv2.INTER_CUBIC)  # scale 5.86
    a, b = analyzer.analyze(small), analyzer.analyze(big)
    assert len(a) == len(b) == 1
    k = 3000 / 512
    assert np.abs(b.boxes[0] / k - a.boxes[0]).max() < 6


def test_every_input_kind_gives_the_same_faces(analyzer, tmp_path):
    bgr = astronaut_bgr()
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), bgr)
    reference = analyzer.analyze(bgr)
    variants = [
        analyzer.analyze(path), analyzer.analyze(str(path)), analyzer.analyze(path.read_bytes()),
        analyzer.analyze(bgr[:, :, ::-1], color="rgb"), Analyzer(color="rgb").analyze(bgr[:, :, ::-1]),
        analyzer.analyze(np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)])),
        analyzer.analyze(bgr.astype(np.uint16) * 257),
    ]
    for faces in variants:
        assert np.array_equal(faces.boxes, reference.boxes)
        np.testing.assert_allclose(faces.probs, reference.probs, atol=1e-5)
    gray = analyzer.analyze(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    assert len(gray) == 1 and match_boxes(reference.boxes, gray.boxes)[0][0] > 0.8


def test_results_convert_to_dict_json_and_table(analyzer):
    faces = analyzer.analyze(astronaut_bgr())
    d = faces.to_list()[0]
    assert set(d) >= {"box", "detector_score", "emotion", "confidence", "scores"}
    assert list(d["scores"]) == list(EMOTIONS) and abs(sum(d["scores"].values()) - 1) < 1e-3
    assert json.loads(faces.to_json())[0]["box"] == list(faces[0].box)
    df = faces.to_df(file="a.png")
    assert len(df) == 1 and df.loc[0, "file"] == "a.png" and df.loc[0, "emotion"] == faces[0].emotion
    assert moodlens.Analyzer is Analyzer


def test_all_faces_of_a_frame_are_classified_in_one_batch(analyzer):
    image, _ = group_photo(analyzer.detect, [90, 80, 70, 60])
    calls = []
    original = analyzer.classifier.predict

    def counting(faces, *a, **k):
        calls.append(len(faces))
        return original(faces, *a, **k)

    analyzer.classifier.predict = counting
    try:
        faces = analyzer.analyze(image)
    finally:
        analyzer.classifier.predict = original
    assert calls == [len(faces)] and len(faces) == 4


def test_bad_inputs_raise_image_error(analyzer, tmp_path):
    (tmp_path / "t.jpg").write_text("not an image")
    for bad in (tmp_path / "t.jpg", b"", np.zeros((1, 1, 3), np.uint8), tmp_path / "missing.png"):
        with pytest.raises(ImageError):
            analyzer.analyze(bad)


def test_analyze_paths_reports_failures_and_goes_on(analyzer, tmp_path):
    cv2.imwrite(str(tmp_path / "a.jpg"), astronaut_bgr())
    (tmp_path / "b.jpg").write_bytes(cv2.imencode(".jpg", astronaut_bgr())[1].tobytes()[:2000])
    cv2.imwrite(str(tmp_path / "c.png"), cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR))
    out = dict(analyzer.analyze_paths([tmp_path]))
    assert len(out[tmp_path / "a.jpg"]) == 1
    assert isinstance(out[tmp_path / "b.jpg"], ImageError) and "truncated" in str(out[tmp_path / "b.jpg"])
    assert len(out[tmp_path / "c.png"]) == 0
    # The variant for drawing hands back the decoded image it analysed (no second decode), None after an error.
    images = {path: (faces, image) for path, faces, image in analyzer.analyze_paths_with_images([tmp_path])}
    assert np.array_equal(images[tmp_path / "a.jpg"][1], load_image(tmp_path / "a.jpg"))
    assert images[tmp_path / "a.jpg"][0].to_list() == out[tmp_path / "a.jpg"].to_list()
    assert images[tmp_path / "b.jpg"][1] is None


def test_unknown_detector_and_custom_detector():
    with pytest.raises(ValueError, match="unknown detector"):
        create_detector("haar")

    class Fixed:
        name = "fixed"

        def detect(self, bgr):
            return moodlens.Faces([[10, 10, 50, 50]], [0.9])

    faces = Analyzer(detector=Fixed()).analyze(astronaut_bgr())
    assert faces.boxes.tolist() == [[10, 10, 50, 50]] and not np.isnan(faces.probs).any()


def test_annotation_draws_emotion_colours_at_any_size(analyzer):
    for side in (160, 512, 2400):
        image = cv2.resize(astronaut_bgr(), (side, side))
        faces = analyzer.analyze(image)
        out = annotate(image, faces, scores=True)
        assert out.shape == image.shape and not np.array_equal(out, image)
        assert np.array_equal(image, cv2.resize(astronaut_bgr(), (side, side)))  # input untouched
        colour = np.array(EMOTION_COLORS_BGR[faces[0].emotion])
        x, y, w, h = faces[0].box
        edge = out[y + h // 2, max(0, x - 3):x + 4]  # the box's left edge crosses this row
        assert (np.abs(edge.astype(int) - colour).sum(1) < 60).any()
    boxed = BoxAnnotator().annotate(image.copy(), faces)
    labelled = LabelAnnotator().annotate(image.copy(), faces)
    bars = ScoreBarAnnotator().annotate(image.copy(), faces)
    assert not np.array_equal(boxed, labelled) and not np.array_equal(labelled, bars)
    image = astronaut_bgr()
    faces = analyzer.analyze(image)
    blurred = BlurAnnotator().annotate(image.copy(), faces)
    x, y, w, h = faces[0].box
    face, face_blurred = image[y:y + h, x:x + w], blurred[y:y + h, x:x + w]
    assert cv2.Laplacian(face_blurred, cv2.CV_64F).var() < 0.2 * cv2.Laplacian(face, cv2.CV_64F).var()
    assert np.array_equal(blurred[:y], image[:y])
