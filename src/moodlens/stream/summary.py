"""What a video or camera showed over time: per-track and overall expression segments, and a timeline.

Segments come from the smoothed probabilities: each frame's dominant expression, in runs; a run shorter
than ``min_segment_s`` joins the neighbour its own probabilities favour, so one noisy second does not cut
"sad 0-6 s, happy 6-20 s" into confetti. Memory stays bounded on long streams: runs are merged as they
accumulate and the timeline's bins double in width when there are too many.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from moodlens.recognition.faces import Faces
from moodlens.spec import EMOTIONS, NUM_CLASSES

if TYPE_CHECKING:
    from moodlens.stream.frames import Frame, SourceEvent

#: Runs kept before the finished ones are merged (bounds memory of a track seen for hours).
_MAX_RUNS = 256
#: Timeline bins kept before their width doubles.
_MAX_BINS = 600


def _scores(probs: np.ndarray) -> dict[str, float]:
    return {e: round(float(p), 4) for e, p in zip(EMOTIONS, probs, strict=True)}


@dataclass
class _Run:
    label: int
    start_s: float
    last_s: float
    frames: int
    prob_sum: np.ndarray

    def absorb(self, other: _Run) -> None:
        self.start_s, self.last_s = min(self.start_s, other.start_s), max(self.last_s, other.last_s)
        self.frames += other.frames
        self.prob_sum = self.prob_sum + other.prob_sum


def _merge_short(runs: list[_Run], min_s: float, end_s: float) -> list[_Run]:
    """Merge runs shorter than ``min_s`` (a run lasts until the next one starts; the last one until ``end_s``)
    into the neighbour whose expression the short run's own probabilities favour, shortest first."""
    runs = [_Run(r.label, r.start_s, r.last_s, r.frames, r.prob_sum.copy()) for r in runs]
    while len(runs) > 1:
        ends = [r.start_s for r in runs[1:]] + [end_s]
        durations = [e - r.start_s for r, e in zip(runs, ends, strict=True)]
        i = int(np.argmin(durations))
        if durations[i] >= min_s:
            break
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(runs)]
        j = max(neighbours, key=lambda k: runs[i].prob_sum[runs[k].label])
        runs[j].absorb(runs[i])
        del runs[i]
        j = j if j < i else j - 1
        for k in (j + 1, j):  # the grown run may now meet a run of its own expression
            if 0 < k < len(runs) and runs[k - 1].label == runs[k].label:
                runs[k - 1].absorb(runs[k])
                del runs[k]
    return runs


class Segments:
    """Runs of the dominant expression over time, with a minimum segment length."""

    def __init__(self, min_s: float) -> None:
        self.min_s = min_s
        self._runs: list[_Run] = []
        self.last_s = 0.0

    def add(self, time_s: float, probs: np.ndarray) -> None:
        label = int(np.argmax(probs))
        self.last_s = time_s
        if self._runs and self._runs[-1].label == label:
            run = self._runs[-1]
            run.last_s, run.frames = time_s, run.frames + 1
            run.prob_sum += probs
            return
        self._runs.append(_Run(label, time_s, time_s, 1, np.asarray(probs, np.float64).copy()))
        if len(self._runs) > _MAX_RUNS:  # keep the open run as it is; merge the finished ones
            done = _merge_short(self._runs[:-1], self.min_s, self._runs[-1].start_s)
            self._runs = done + self._runs[-1:]

    def to_list(self) -> list[dict[str, Any]]:
        """``[{"emotion", "start_s", "end_s", "frames", "scores"}]``; a segment ends where the next starts."""
        runs = _merge_short(self._runs, self.min_s, self.last_s)
        out = []
        for k, r in enumerate(runs):
            end = runs[k + 1].start_s if k + 1 < len(runs) else self.last_s
            out.append({"emotion": EMOTIONS[r.label], "start_s": round(r.start_s, 3), "end_s": round(end, 3),
                        "frames": r.frames, "scores": _scores(r.prob_sum / max(r.frames, 1))})
        return out


def describe_segments(segments: list[dict[str, Any]]) -> str:
    """``sad 0.0-6.0 s, happy 6.0-20.0 s``."""
    return ", ".join(f"{s['emotion']} {s['start_s']:.1f}-{s['end_s']:.1f} s" for s in segments)


class Timeline:
    """Faces and mean probabilities per time bin; bins start at ``bin_s`` seconds and double when too many."""

    def __init__(self, bin_s: float = 1.0) -> None:
        self.bin_s = bin_s
        self._faces: list[int] = []
        self._sums: list[np.ndarray] = []

    def add(self, time_s: float, probs: np.ndarray) -> None:
        k = int(time_s // self.bin_s)
        while k >= _MAX_BINS:
            self._faces = [sum(self._faces[i:i + 2]) for i in range(0, len(self._faces), 2)]
            self._sums = [sum(self._sums[i:i + 2]) for i in range(0, len(self._sums), 2)]
            self.bin_s *= 2
            k = int(time_s // self.bin_s)
        while len(self._faces) <= k:
            self._faces.append(0)
            self._sums.append(np.zeros(NUM_CLASSES))
        self._faces[k] += len(probs)
        self._sums[k] = self._sums[k] + probs.sum(0)

    def to_list(self) -> list[dict[str, Any]]:
        out = []
        for k, (n, s) in enumerate(zip(self._faces, self._sums, strict=True)):
            if n:
                mean = s / n
                out.append({"start_s": round(k * self.bin_s, 3), "end_s": round((k + 1) * self.bin_s, 3),
                            "faces": n, "emotion": EMOTIONS[int(mean.argmax())], "scores": _scores(mean)})
        return out


@dataclass
class TrackSummary:
    """What one tracked face showed over its lifetime (no identity: just a track id)."""

    track_id: int
    first_s: float
    last_s: float
    segments: Segments
    frames: int = 0
    prob_sum: np.ndarray = field(default_factory=lambda: np.zeros(NUM_CLASSES, np.float64))

    @property
    def mean_probs(self) -> np.ndarray:
        return self.prob_sum / max(self.frames, 1)

    @property
    def emotion(self) -> str:
        return EMOTIONS[int(self.mean_probs.argmax())]

    def to_dict(self) -> dict[str, Any]:
        return {"track_id": self.track_id, "first_s": round(self.first_s, 3), "last_s": round(self.last_s, 3),
                "duration_s": round(self.last_s - self.first_s, 3), "frames": self.frames,
                "emotion": self.emotion, "scores": _scores(self.mean_probs), "segments": self.segments.to_list()}


@dataclass
class StreamSummary:
    """Per-track and overall summary of one video, camera or stream, over time.

    ``frames``: frames analysed; ``frames_dropped``: frames a live source dropped because analysis was behind;
    ``offline``: intervals a live source was unreachable; ``completed``: a file read to its end;
    ``ended_early``: why it stopped before its end, if it did.
    """

    source: str
    fps: float = 0.0
    min_segment_s: float = 2.0
    frames: int = 0
    frames_dropped: int = 0
    completed: bool = False
    ended_early: str | None = None
    offline: list[dict[str, Any]] = field(default_factory=list)
    tracks: dict[int, TrackSummary] = field(default_factory=dict)
    timeline: Timeline = field(default_factory=Timeline)
    segments: Segments | None = None

    def __post_init__(self) -> None:
        self.segments = self.segments or Segments(self.min_segment_s)

    def add(self, frame: Frame, faces: Faces) -> None:
        self.frames += 1
        self.frames_dropped = frame.dropped
        t = frame.time_s
        valid = (faces.track_ids >= 0) & ~np.isnan(faces.probs).any(1)
        for tid, p in zip(faces.track_ids[valid].tolist(), faces.probs[valid], strict=True):
            track = self.tracks.get(tid)
            if track is None:
                track = self.tracks[tid] = TrackSummary(tid, t, t, Segments(self.min_segment_s))
            track.last_s, track.frames = t, track.frames + 1
            track.prob_sum += p
            track.segments.add(t, p)
        if valid.any():
            probs = faces.probs[valid].astype(np.float64)
            self.timeline.add(t, probs)
            self.segments.add(t, probs.mean(0))

    def add_event(self, event: SourceEvent) -> None:
        """Record a live source going offline or coming back (the open interval is closed by ``online``)."""
        if event.kind == "offline":
            self.offline.append({"from": event.at.isoformat(timespec="seconds"), "to": None, "reason": event.reason})
        elif self.offline and self.offline[-1]["to"] is None:
            self.offline[-1]["to"] = event.at.isoformat(timespec="seconds")

    def overall(self) -> dict[str, Any]:
        face_frames = sum(t.frames for t in self.tracks.values())
        mean = sum((t.prob_sum for t in self.tracks.values()), np.zeros(NUM_CLASSES)) / max(face_frames, 1)
        per_track = {e: 0 for e in EMOTIONS}
        for t in self.tracks.values():
            per_track[t.emotion] += 1
        return {"tracks": len(self.tracks), "face_frames": face_frames, "tracks_by_emotion": per_track,
                "mean_scores": _scores(mean), "segments": self.segments.to_list(),
                "timeline_bin_s": self.timeline.bin_s, "timeline": self.timeline.to_list()}

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "frames": self.frames, "fps": round(self.fps, 3),
                "frames_dropped": self.frames_dropped, "completed": self.completed,
                "ended_early": self.ended_early, "offline": self.offline, "overall": self.overall(),
                "tracks": [t.to_dict() for t in sorted(self.tracks.values(), key=lambda t: t.track_id)]}
