"""``AnalysisSettings``: the analysis defaults, defined once.

The CLI and the web app build one of these from their options and pass it whole to
:class:`~moodlens.recognition.analyzer.Analyzer` (and everything that makes one), so a default
such as the least detector score lives here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from moodlens.spec import FACE_MARGIN


def _with_changes(settings: Any, what: str, changes: dict[str, Any]) -> Any:
    """A copy of a settings dataclass with ``changes`` applied; unknown names are an error, ``None`` is ignored."""
    unknown = set(changes) - {f.name for f in fields(settings)}
    if unknown:
        raise TypeError(f"unknown {what} setting(s): {', '.join(sorted(unknown))}")
    return replace(settings, **{k: v for k, v in changes.items() if v is not None})


#: Groups (the whole event, a time bin, a source) with fewer people are never broken out in reports.
MIN_GROUP_SIZE: int = 5
#: Differential-privacy budget of each released expression mix of a group (``moodlens.events.privacy``):
#: one person's scores change the odds of any released numbers by at most a factor e**PRIVACY_EPSILON.
PRIVACY_EPSILON: float = 1.0

#: How the classifier uses mirror images (``EmotionClassifier``): ``average`` classifies each face and
#: its mirror image and averages them (photos); ``alternate`` classifies one of the two per call, the
#: mirror image every other call, with half the work (video: a track averaged over frames sees both).
FLIP_MODES: tuple[str, ...] = ("average", "alternate")
#: The flip mode of video, webcam and stream analysis: ``settings.with_(flip=VIDEO_FLIP)``.
VIDEO_FLIP: str = "alternate"


@dataclass(frozen=True)
class AnalysisSettings:
    """How faces are found and classified.

    ``model``: a shipped model's name (``default``, ``accurate``) or an ``.onnx`` path.
    ``detector``: ``auto`` (fastest that loads), ``yunet``, ``centerface``, or an object with
    ``detect(bgr) -> Faces``. ``min_confidence``: the detector score a face needs.
    ``min_face``: the narrowest face (box width, original-image pixels) detection must find; the
    detector's input is scaled so that this face lands where the detector is still reliable, and a
    coarser pass is added when a face as wide as the image's shorter side would otherwise be missed
    (``moodlens.recognition.pyramid``). Boxes stay in original pixels.
    ``max_side``: cost cap, the longest side the finest detection pass may have; on larger images the
    narrowest face found grows beyond ``min_face`` in proportion.
    ``margin``: border added around each face box before cropping, as a fraction of its side.
    ``flip``: one of :data:`FLIP_MODES`; video analysis uses :data:`VIDEO_FLIP`.
    """

    model: str | Path = "default"
    detector: Any = "auto"
    min_confidence: float = 0.6
    min_face: int = 20
    max_side: int = 1280
    margin: float = FACE_MARGIN
    flip: str = "average"

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be between 0 and 1, got {self.min_confidence}")
        if not 8 <= self.min_face <= 4096:
            raise ValueError(f"min_face must be between 8 and 4096 pixels, got {self.min_face}")
        if self.max_side < 32:
            raise ValueError(f"max_side must be at least 32, got {self.max_side}")
        if not 0.0 <= self.margin <= 1.0:
            raise ValueError(f"margin must be between 0 and 1, got {self.margin}")
        if self.flip not in FLIP_MODES:
            raise ValueError(f"flip must be one of {', '.join(FLIP_MODES)}, got {self.flip!r}")

    def with_(self, **changes: Any) -> AnalysisSettings:
        """A copy with ``changes`` applied (unknown names are an error); ``None`` values are ignored."""
        return _with_changes(self, "analysis", changes)


#: The defaults, for option declarations that must show them (CLI help, web forms).
DEFAULTS = AnalysisSettings()
#: The defaults of video files, webcams and streams: faces from 30 px wide (one 427x320 detector pass on a
#: 640x480 frame, where 20 px wide would need two: docs/recognition.md) and the alternating flip, on half the
#: classifier work.
VIDEO_DEFAULTS = DEFAULTS.with_(min_face=30, flip=VIDEO_FLIP)


@dataclass(frozen=True)
class StreamSettings:
    """How a video, camera or stream becomes tracked faces: one set of rules for every command.

    ``every``: analyse every Nth frame of the source (the others are skipped without decoding where possible).
    ``detect_every``: run the detector on every Nth analysed frame; in between, boxes follow the image by
    optical flow (cheap), and every analysed frame is classified.
    ``track_gap_s``: seconds a face may go unseen before its track (one person) ends.
    ``smoothing``: weight of the newest frame in each track's moving average of probabilities (1 = off).
    ``min_segment_s``: shortest expression segment in summaries over time; shorter ones join a neighbour.
    ``open_timeout_s``: how long opening or reading a stream URL may block before it counts as unreachable.
    ``max_offline_s``: how long a dropped live source is retried before its run ends (``None``: until stopped).
    ``drop_late_frames``: live sources drop (and count) frames when analysis falls behind; ``False`` reads
    no faster than analysis instead (a recorded stream served live).
    """

    every: int = 1
    detect_every: int = 3
    track_gap_s: float = 1.0
    smoothing: float = 0.4
    min_segment_s: float = 2.0
    open_timeout_s: float = 10.0
    max_offline_s: float | None = None
    drop_late_frames: bool = True

    def __post_init__(self) -> None:
        if self.every < 1 or self.detect_every < 1:
            raise ValueError(f"every and detect_every must be at least 1, got {self.every} and {self.detect_every}")
        if self.track_gap_s < 0:
            raise ValueError(f"track_gap_s must be >= 0, got {self.track_gap_s}")
        if not 0.0 < self.smoothing <= 1.0:
            raise ValueError(f"smoothing must be in (0, 1], got {self.smoothing}")
        if self.min_segment_s < 0 or self.open_timeout_s <= 0:
            raise ValueError("min_segment_s must be >= 0 and open_timeout_s > 0")
        if self.max_offline_s is not None and self.max_offline_s < 0:
            raise ValueError(f"max_offline_s must be >= 0, got {self.max_offline_s}")

    def with_(self, **changes: Any) -> StreamSettings:
        """A copy with ``changes`` applied (unknown names are an error); ``None`` values are ignored."""
        return _with_changes(self, "stream", changes)


#: The stream defaults, for option declarations that must show them.
STREAM_DEFAULTS = StreamSettings()
