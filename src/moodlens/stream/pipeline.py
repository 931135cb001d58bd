"""``Pipeline``: one source's analysis state (schedule, tracker, smoother, summary) and its stages in order.

>>> pipeline = Pipeline(Analyzer(), fps=25.0)             # doctest: +SKIP
>>> for frame in frames: faces = pipeline.process(frame)   # doctest: +SKIP
>>> summary = pipeline.close()                             # doctest: +SKIP

:func:`moodlens.stream.engine.run_streams` runs the same stages on threads (the stages before
classification on one, classification batched over all sources and the stages after it on another).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moodlens.recognition.faces import Faces
from moodlens.settings import STREAM_DEFAULTS, StreamSettings
from moodlens.stream.frames import FALLBACK_FPS, Frame
from moodlens.stream.stages import Classify, DetectOrFollow, Smooth, Stage, Summarise, Track, make_tracker
from moodlens.stream.summary import StreamSummary

if TYPE_CHECKING:
    from moodlens.recognition.analyzer import Analyzer


class Pipeline:
    """Detect on a schedule, follow, track, classify, smooth, summarise: the one analysis of every stream.

    ``analyzer`` may be ``None`` when each call brings its own (:meth:`process` with ``analyzer=``), as the
    web app's worker threads do. ``fps`` is the source's frame rate (it turns ``track_gap_s`` into frames).
    """

    def __init__(self, analyzer: Analyzer | None = None, settings: StreamSettings = STREAM_DEFAULTS,
                 fps: float = FALLBACK_FPS, name: str = "") -> None:
        self.settings = settings
        self.summary = StreamSummary(name, fps=fps, min_segment_s=settings.min_segment_s)
        self.tracker = make_tracker(settings, fps)
        self.detect = DetectOrFollow(analyzer, settings.detect_every, settings.every)
        self.track = Track(self.tracker)
        self.classify = Classify(analyzer)
        self.smooth = Smooth(settings.smoothing)
        self.summarise = Summarise(self.summary)

    @property
    def stages(self) -> list[Stage]:
        return [self.detect, self.track, self.classify, self.smooth, self.summarise]

    def use(self, analyzer: Analyzer) -> None:
        """Run the detector and classifier of ``analyzer`` from now on."""
        self.detect.analyzer = self.classify.analyzer = analyzer

    def locate(self, frame: Frame) -> Faces:
        """The stages before classification: boxes with track ids (probabilities not yet set)."""
        return self.track.update(frame, self.detect.update(frame, Faces()))

    def finish(self, frame: Frame, classified: Faces) -> Faces:
        """The stages after classification: smoothed probabilities, added to the summary."""
        return self.summarise.update(frame, self.smooth.update(frame, classified))

    def process(self, frame: Frame, analyzer: Analyzer | None = None) -> Faces:
        """Every stage on one frame, in this thread; returns the frame's faces (track ids, smoothed probabilities)."""
        if analyzer is not None:
            self.use(analyzer)
        faces = Faces()
        for stage in self.stages:
            faces = stage.update(frame, faces)
        return faces

    def close(self) -> StreamSummary:
        """End every open track (end of stream) and return the summary."""
        self.smooth.drop(self.tracker.finish())
        return self.summary
