"""Aggregate an event's observations into a private report (JSON and CSV here; HTML in ``report_html``).

Privacy rule: a group (the whole event, a time bin, a source) with fewer than
``min_group_size`` people is never broken out into expressions; only its head
count is shown. Larger groups are shown as differentially private noisy shares
(``moodlens.events.privacy``), so that faces someone adds and knows cannot single
out the others' expressions.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from moodlens.events.privacy import PHOTO_KINDS, PrivateReleases
from moodlens.events.store import PROB_COLUMNS, EventStore, utcnow
from moodlens.settings import MIN_GROUP_SIZE, PRIVACY_EPSILON
from moodlens.spec import EMOTIONS, VALENCE
from moodlens.textsafe import csv_cell

REPORT_FORMATS = ("html", "csv", "json")
#: Classes the report always warns about: few/ambiguous FER2013 examples make them unreliable.
UNRELIABLE_CLASSES = ("fear", "disgust")
#: Per-class score (F1, else recall) under which a class is flagged as unreliable too.
RELIABLE_SCORE = 0.5

_VALENCE = np.array([VALENCE[e] for e in EMOTIONS], np.float64)
_GROUPS = {"positive": [e for e in EMOTIONS if VALENCE[e] > 0], "neutral": [e for e in EMOTIONS if VALENCE[e] == 0],
           "negative": [e for e in EMOTIONS if VALENCE[e] < 0]}


def valence_definition() -> str:
    """The valence index definition printed on every report, built from :data:`moodlens.spec.VALENCE`."""
    return ("Valence index = 100 × (positive share − negative share), from −100 (every face negative) to +100 "
            "(every face positive). Shares are the model's expression probabilities, averaged first over each "
            "person's track and then over people, so everyone weighs the same however long they were seen. "
            f"Positive: {', '.join(_GROUPS['positive'])}; neutral: {', '.join(_GROUPS['neutral'])}; "
            f"negative: {', '.join(_GROUPS['negative'])}.")


def privacy_definition(min_group_size: int, epsilon: float | None) -> str:
    """The privacy rule printed on every report."""
    text = (f"Groups (the event, a time bin, a source) with fewer than {min_group_size} people are not broken out "
            "into expressions; only their head count is shown.")
    if epsilon is None:
        return text + " Shares are exact (no privacy noise): this report is for the operator only."
    return text + (f" Larger groups' shares carry random noise (differential privacy, epsilon = {epsilon:g} per "
                   "group): one person's expressions cannot be recovered from them, even by someone who added "
                   "faces of their own. The noise is larger for smaller groups; it stays the same while a "
                   "group's data does not change.")


TRACK_DEFINITION = (
    "People are counted as tracks. In a video or camera stream, a track links the detections of one face from "
    "frame to frame by box position (no face recognition, no identity). A track ends when its face is not "
    "seen for the source's tracking gap (below): a person who leaves and comes back later, or who is hidden "
    "for longer than that, is counted again. In photos every detected face counts as one person, so someone "
    "who appears in several photos is counted more than once. The counts are therefore an upper bound on "
    "distinct people.")


@dataclass
class EventReport:
    """The aggregated, privacy-filtered content of one event's report."""

    data: dict[str, Any]
    timeline: pd.DataFrame = field(repr=False)
    sources: pd.DataFrame = field(repr=False)

    @property
    def people(self) -> int:
        return int(self.data["totals"]["people"])

    @property
    def faces(self) -> int:
        return int(self.data["totals"]["faces"])

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.data, **kwargs)

    def write(self, out_dir: str | Path, formats: str | list[str] | tuple[str, ...] = REPORT_FORMATS) -> list[Path]:
        """Write the report as ``report.html``, ``report.json`` and/or CSV files; returns the paths."""
        formats = parse_formats(formats)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        if "json" in formats:
            path = out / "report.json"
            path.write_text(self.to_json(indent=2), encoding="utf-8")
            written.append(path)
        if "csv" in formats:
            written += self._write_csv(out)
        if "html" in formats:
            from moodlens.events.report_html import render_html

            path = out / "report.html"
            path.write_text(render_html(self), encoding="utf-8")
            written.append(path)
        return written

    def _write_csv(self, out: Path) -> list[Path]:
        paths = [out / "summary.csv", out / "timeline.csv", out / "sources.csv"]
        d = self.data
        rows = [["key", "value"], ["event", d["event"]["name"]], *([k, v] for k, v in d["totals"].items()),
                ["valence_index", d["overall"]["valence_index"]],
                *([f"share_{e}", (d["overall"]["shares"] or {}).get(e)] for e in EMOTIONS),
                ["min_group_size", d["min_group_size"]]]
        with paths[0].open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([csv_cell(v) for v in row] for row in rows)
        self.timeline.map(csv_cell).to_csv(paths[1], index=False)
        self.sources.map(csv_cell).to_csv(paths[2], index=False)
        return paths


def parse_formats(formats: str | list[str] | tuple[str, ...]) -> list[str]:
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    items = [f.strip().lower() for f in items if f.strip()]
    bad = [f for f in items if f not in REPORT_FORMATS]
    if bad or not items:
        raise ValueError(f"unknown report format(s) {bad or formats!r}; choose from {', '.join(REPORT_FORMATS)}")
    return items


def _group_stats(releases: PrivateReleases, key: str, person_probs: np.ndarray, from_photos: int = 0,
                 ) -> dict[str, Any]:
    """Released expression shares and valence of a group of people (rows: each person's mean probabilities;
    ``from_photos`` of them are faces in photos).

    Everything shown is computed from the private release; ``dominant`` (how many people had each
    expression as their main one) is not private and therefore never shown.
    """
    n = len(person_probs)
    released = releases.release(key, person_probs, from_photos)
    if released is None:
        return {"people": n, "suppressed": True, "shares": None, "dominant": None, "valence_index": None,
                "positive": None, "neutral": None, "negative": None}
    mean = released.shares
    groups = {g: float(sum(mean[EMOTIONS.index(e)] for e in es)) for g, es in _GROUPS.items()}
    shares = {e: round(float(p), 4) for e, p in zip(EMOTIONS, mean, strict=True)}
    return {"people": n, "suppressed": False, "shares": shares, "dominant": None,
            "valence_index": round(100.0 * float(mean @ _VALENCE), 1),
            **{g: round(v, 4) for g, v in groups.items()}}


def _iso(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    return pd.Timestamp(value).isoformat()


def model_summary(card: dict[str, Any] | None) -> dict[str, Any]:
    """Measured accuracy and per-class caveats from a model card (``metrics.publictest``), if it has them."""
    card = card or {}
    test = (card.get("metrics") or {}).get("publictest") or {}
    per_class_raw = test.get("per_class") or {}
    per_class: dict[str, float] = {}
    for name, value in per_class_raw.items():
        score = value.get("f1", value.get("recall")) if isinstance(value, dict) else value
        if isinstance(score, (int, float)):
            per_class[name] = float(score)
    weak = sorted({c for c, s in per_class.items() if s < RELIABLE_SCORE} | set(UNRELIABLE_CLASSES),
                  key=lambda c: EMOTIONS.index(c) if c in EMOTIONS else 99)
    caveats = ["The model sees apparent facial expressions, not inner emotions: a smile is not proof of enjoyment."]
    accuracy, macro_f1 = test.get("accuracy"), test.get("macro_f1")
    if isinstance(accuracy, (int, float)):
        text = f"Measured accuracy on the FER2013 PublicTest split: {100 * accuracy:.1f}%"
        if isinstance(macro_f1, (int, float)):
            text += f" (macro F1 {macro_f1:.3f})"
        caveats.append(text + "; faces at an event (angles, light, masks) are usually harder than the test set.")
    else:
        caveats.append("The model card has no measured accuracy: treat these numbers as uncalibrated.")
    detail = ", ".join(f"{c} (F1 {per_class[c]:.2f})" if c in per_class else c for c in weak)
    caveats.append(f"Unreliable classes: {detail}. Their shares should not be read on their own.")
    caveats.append("FER2013 and similar data under-represent some ages, skin tones and cultures; "
                   "accuracy may differ between groups of people.")
    return {"name": card.get("name"), "accuracy": accuracy, "macro_f1": macro_f1,
            "per_class": per_class or None, "unreliable_classes": weak, "caveats": caveats}


def load_model_card(model: str | Path | None = "default") -> dict[str, Any]:
    from moodlens.recognition.classifier import load_card, resolve_model

    try:
        return load_card(resolve_model(model))
    except (FileNotFoundError, ValueError):
        return {}


def build_report(store: EventStore, event_name: str, min_group_size: int = MIN_GROUP_SIZE, bin_minutes: int = 1,
                 model: str | Path | None = "default", model_card: dict[str, Any] | None = None,
                 epsilon: float | None = PRIVACY_EPSILON) -> EventReport:
    """Aggregate an event: totals, expression mix, timeline, sources, peaks, model caveats.

    ``epsilon``: privacy budget of each released group (see ``moodlens.events.privacy``); ``None`` gives
    exact numbers, for the operator's own analyses only.
    """
    if min_group_size < 1:
        raise ValueError("min_group_size must be at least 1")
    if bin_minutes < 1:
        raise ValueError("bin_minutes must be at least 1")
    releases = PrivateReleases(store, event_name, epsilon, min_group_size)
    ev = store.get_event(event_name)
    sources = store.sources(event_name)
    df = store.observations(event_name)
    outside = 0
    if len(df) and (ev.starts_at or ev.ends_at):
        inside = pd.Series(True, index=df.index)
        if ev.starts_at:
            inside &= df["ts"] >= pd.Timestamp(ev.starts_at)
        if ev.ends_at:
            inside &= df["ts"] <= pd.Timestamp(ev.ends_at)
        outside = int((~inside).sum())
        df = df[inside]

    tracks = df.groupby(["source_id", "track"], sort=False)[list(PROB_COLUMNS)].mean()
    person_probs = tracks.to_numpy(np.float64)
    by_kind = df.drop_duplicates(["source_id", "track"])["kind"].value_counts()
    totals = {
        "people": int(len(tracks)),
        "stream_tracks": int(by_kind.get("video", 0) + by_kind.get("camera", 0)),
        "photo_faces": int(by_kind.get("photos", 0) + by_kind.get("upload", 0)),
        "faces": int(len(df)),
        "sources": len(sources),
        "first_seen": _iso(df["ts"].min()) if len(df) else None,
        "last_seen": _iso(df["ts"].max()) if len(df) else None,
        "observations_outside_window": outside,
    }
    overall = _group_stats(releases, "overall", person_probs, totals["photo_faces"])

    photo_sources = {src.id for src in sources if src.kind in PHOTO_KINDS}
    timeline = _timeline(df, bin_minutes, min_group_size, releases, photo_sources)
    source_rows = []
    for src in sources:
        part = df[df["source_id"] == src.id]
        probs = part.groupby("track")[list(PROB_COLUMNS)].mean().to_numpy(np.float64)
        stats = _group_stats(releases, f"source:{src.id}", probs, len(probs) if src.id in photo_sources else 0)
        source_rows.append({"source": src.label, "kind": src.kind, "faces": int(len(part)), **_flat(stats),
                            "tracking": src.tracking, "complete": bool(src.finished)})
    source_df = pd.DataFrame(source_rows, columns=["source", "kind", "people", "faces", "suppressed",
                                                   "valence_index", *_share_cols(), "tracking", "complete"])
    source_df = suppress_complement(source_df, min_group_size)
    data = {
        "event": {"name": ev.name, "description": ev.description, "starts_at": _iso(ev.starts_at),
                  "ends_at": _iso(ev.ends_at)},
        "generated_at": utcnow().isoformat(timespec="seconds"),
        "timezone": "UTC",
        "min_group_size": min_group_size,
        "bin_minutes": bin_minutes,
        "totals": totals,
        "overall": overall,
        "timeline": _records(timeline),
        "sources": _records(source_df),
        "peaks": _peaks(timeline),
        "definitions": {"people": TRACK_DEFINITION, "valence_index": valence_definition(),
                        "privacy": privacy_definition(min_group_size, epsilon)},
        "model": model_summary(model_card if model_card is not None else load_model_card(model)),
    }
    return EventReport(data, timeline, source_df)


def _share_cols() -> list[str]:
    return [f"share_{e}" for e in EMOTIONS]


def _flat(stats: dict[str, Any]) -> dict[str, Any]:
    shares = stats["shares"] or {}
    return {"people": stats["people"], "suppressed": stats["suppressed"], "valence_index": stats["valence_index"],
            **{f"share_{e}": shares.get(e) for e in EMOTIONS}}


def suppress_complement(parts: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """Hide more groups of a partition when the hidden ones together hold fewer than ``min_group_size`` people.

    Otherwise the event total minus the shown groups would reveal the hidden few (a differencing attack).
    The smallest shown groups are hidden first.
    """
    parts = parts.copy()
    hidden = parts["suppressed"].astype(bool)
    while 0 < int(parts.loc[hidden, "people"].sum()) < min_group_size and not hidden.all():
        smallest = parts.loc[~hidden, "people"].astype(int).idxmin()
        hidden.loc[smallest] = True
    cols = ["valence_index", *_share_cols()]
    parts[cols] = parts[cols].astype(object).where(~hidden, None)
    parts["suppressed"] = hidden
    return parts


def _timeline(df: pd.DataFrame, bin_minutes: int, min_group_size: int, releases: PrivateReleases,
              photo_sources: set[int]) -> pd.DataFrame:
    columns = ["start", "people", "faces", "suppressed", "valence_index", *_share_cols()]
    if not len(df):
        return pd.DataFrame(columns=columns)
    binned = df.assign(bin=df["ts"].dt.floor(f"{bin_minutes}min"))
    # Each person counts once per bin, with their expression averaged over the bin.
    per_person = binned.groupby(["bin", "source_id", "track"])[list(PROB_COLUMNS)].mean()
    faces = binned.groupby("bin").size()
    rows = []
    full_range = pd.date_range(binned["bin"].min(), binned["bin"].max(), freq=f"{bin_minutes}min")
    for start in full_range:
        people = per_person.loc[start] if start in faces.index else per_person.iloc[:0]
        from_photos = int(people.index.get_level_values("source_id").isin(photo_sources).sum())
        stats = _group_stats(releases, f"bin:{start.isoformat()}/{bin_minutes}min", people.to_numpy(np.float64),
                             from_photos)
        rows.append({"start": start, "faces": int(faces.get(start, 0)), **_flat(stats)})
    return suppress_complement(pd.DataFrame(rows, columns=columns), min_group_size)


def _peaks(timeline: pd.DataFrame) -> dict[str, Any]:
    peaks: dict[str, Any] = {}
    if not len(timeline):
        return peaks
    busiest = timeline.loc[timeline["people"].idxmax()]
    peaks["busiest"] = {"start": _iso(busiest["start"]), "people": int(busiest["people"])}
    shown = timeline[~timeline["suppressed"].astype(bool)]
    if len(shown):
        for key, idx in (("most_positive", shown["valence_index"].astype(float).idxmax()),
                         ("most_negative", shown["valence_index"].astype(float).idxmin())):
            row = shown.loc[idx]
            shares = {e: row[f"share_{e}"] for e in EMOTIONS}
            peaks[key] = {"start": _iso(row["start"]), "people": int(row["people"]),
                          "valence_index": float(row["valence_index"]),
                          "top_expression": max(shares, key=shares.__getitem__)}
    return peaks


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame.to_dict("records"):
        clean = {}
        for k, v in row.items():
            if isinstance(v, (pd.Timestamp, datetime)):
                v = _iso(v)
            elif isinstance(v, (np.integer,)):
                v = int(v)
            elif isinstance(v, (np.floating, float)):
                v = None if np.isnan(v) else round(float(v), 4)
            elif isinstance(v, np.bool_):
                v = bool(v)
            clean[k] = v
        out.append(clean)
    return out
