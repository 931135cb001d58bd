"""A real MJPEG-over-HTTP camera for the stream tests (:mod:`moodlens.stream.mjpeg`), and decoding its frames."""

from __future__ import annotations

import cv2
import numpy as np

from moodlens.stream.mjpeg import MjpegServer, video_jpegs

__all__ = ["MjpegServer", "decoded", "video_jpegs"]


def decoded(jpegs: list[bytes]) -> list[np.ndarray]:
    return [cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR) for j in jpegs]
