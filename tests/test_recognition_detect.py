"""Detectors on their own: YuNet through ctypes (same faces as the wheel's wrapper, flat memory, two
threads), and detection scales chosen by face size (close-ups to 20 px faces)."""

from __future__ import annotations

import os
import platform
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from events_media import background, face_sprite
from recognition_media import astronaut_bgr, close_up, group_photo, match_boxes

from moodlens.recognition.analyzer import Analyzer
from moodlens.recognition.detect import DetectorUnavailable, YuNetDetector
from moodlens.recognition.faces import Faces
from moodlens.recognition.pyramid import detection_scales, merge_passes
from moodlens.settings import AnalysisSettings


def resident_memory_bytes() -> int:
    """This process's resident memory now (Linux ``/proc/self/statm``; elsewhere the peak from ``resource``)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if platform.system() == "Darwin" else peak * 1024


@pytest.fixture(scope="module")
def yunet() -> YuNetDetector:
    try:
        return YuNetDetector()
    except DetectorUnavailable as exc:
        pytest.skip(str(exc))


def _photos(detect) -> list[np.ndarray]:
    group, _ = group_photo(detect, [100, 80, 64, 50, 40, 34, 30, 28, 24, 20])
    others = [np.ascontiguousarray(p[:, :, ::-1]) for p in (skimage.data.chelsea(), skimage.data.coffee(),
                                                             skimage.data.rocket())]
    return [astronaut_bgr(), cv2.resize(astronaut_bgr(), (3000, 3000)), group, *others]


def test_yunet_through_ctypes_equals_the_wheels_wrapper(yunet):
    yuface = pytest.importorskip("yuface")
    for image in _photos(yunet.detect):
        # Column 15 is a field the library never writes (the wrapper returns whatever was in its buffer).
        assert np.array_equal(yunet.raw(image), yuface.c_detect(image)[:, :15])


def test_yunet_memory_stays_flat_over_3000_detections(yunet):
    frame = background(160, 120)
    sprite = face_sprite(scale=0.66)
    frame[10:10 + sprite.shape[0], 40:40 + sprite.shape[1]] = sprite
    for _ in range(100):  # warm-up: allocator pools, OpenMP state
        yunet.detect(frame)
    before = resident_memory_bytes()
    for _ in range(3000):
        faces = yunet.detect(frame)
    growth = (resident_memory_bytes() - before) / 2**20
    assert len(faces) == 1
    # The wheel's own wrapper leaks 36 KB a call: 3000 calls would add about 105 MB.
    assert growth < 20, f"resident memory grew {growth:.1f} MB over 3000 detections"


def test_two_yunet_detectors_in_two_threads_give_the_same_faces(yunet):
    frames = [astronaut_bgr(), *(cv2.resize(astronaut_bgr(), (s, s)) for s in (200, 300, 400, 640))] * 3
    serial = [yunet.raw(f) for f in frames]
    results: dict[int, list[np.ndarray]] = {}

    def run(k: int) -> None:
        detector = YuNetDetector()
        results[k] = [detector.raw(f) for f in frames]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(2):
        assert all(np.array_equal(a, b) for a, b in zip(results[k], serial, strict=True))


def test_detection_scales_cover_min_face_to_a_face_filling_the_image():
    scales = detection_scales(1280, 720, 20, 1280, (20, 320))
    assert scales[0] == 1.0 and len(scales) == 2
    assert 320 / scales[-1] >= 720  # the coarsest pass still finds a face as wide as the short side
    assert detection_scales(640, 480, 40, 1280, (20, 320)) == (0.5,)  # one pass finds 40 px up to 640 px
    assert detection_scales(4000, 3000, 20, 1280, (20, 320))[0] == 0.32  # cost cap
    assert detection_scales(4000, 3000, 20, 1280, None) == (0.32,)  # a detector with no range: one pass
    for w, h in ((512, 512), (1280, 720), (6000, 200), (33, 4000)):
        scales = detection_scales(w, h, 20, 1280, (20, 320))
        # Each pass starts finding faces no later than the previous pass stops being reliable.
        assert all(20 / b <= 320 / a for a, b in zip(scales, scales[1:], strict=False))
        assert 320 / scales[-1] >= min(w, h) - 1e-6


def test_merging_passes_keeps_the_box_seen_in_the_detectors_reliable_range():
    fine = Faces([[100, 100, 400, 400], [10, 10, 20, 20]], [0.95, 0.8])  # 400 px at scale 1: over the range
    coarse = Faces([[110, 105, 380, 390]], [0.9])  # 190 px at scale 0.5: in range
    merged = merge_passes([(1.0, fine), (0.5, coarse)], (20, 320))
    assert merged.boxes.tolist() == [[10, 10, 20, 20], [110, 105, 380, 390]]


@pytest.mark.parametrize("aspect", [0.75, 1.33])
def test_close_ups_are_found_at_any_image_size(aspect):
    """Faces filling 40-80 % of the width: one pass at max_side 1280 missed the larger ones (0 faces)
    or split them (2 faces); the coarse pass finds each once, box width within 10 %."""
    analyzer = Analyzer()
    for fraction in (0.4, 0.6, 0.8):
        for width in (640, 1280, 2400):
            image, truth = close_up(fraction, width, aspect)
            faces = analyzer.detect(image)
            assert len(faces) == 1, f"{fraction:.0%} of {width} px: {len(faces)} faces"
            assert abs(faces.boxes[0, 2] / truth[0, 2] - 1) < 0.1
            assert match_boxes(truth, faces.boxes)[0][0] > 0.6


def test_min_face_sets_the_finest_scale():
    analyzer = Analyzer(min_face=48)
    assert analyzer.detection_scales(1280, 720) == (20 / 48,)  # 48 px faces land at 20 px, 720 px ones under 320
    image, truth = group_photo(Analyzer().detect, [100, 80, 64, 56, 48])
    faces = analyzer.detect(image)
    iou, index = match_boxes(truth, faces.boxes)
    assert len(faces) == 5 and (iou > 0.5).all(), iou.round(2)


def test_min_face_is_validated():
    with pytest.raises(ValueError, match="min_face"):
        AnalysisSettings(min_face=4)
    assert AnalysisSettings().with_(min_face=30).min_face == 30
