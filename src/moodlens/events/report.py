"""Aggregate an event's observations into a private report: the data behind the HTML, CSV and JSON files.

Everything is computed on numpy arrays of the whole event at once (``EventStore.observation_arrays``):
no Python loop runs per observation or per time bin. Group numbers are released by
:func:`moodlens.events.groups.release_groups` only. HTML is drawn by ``report_html``, files are written
by ``report_files``; this module imports neither.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from moodlens.events import model_facts as mf
from moodlens.events.groups import (
    HIDDEN_COMPLEMENT,
    HIDDEN_PHOTOS,
    HIDDEN_SMALL,
    SHARE_COLUMNS,
    SHOWN,
    VALENCE_GROUPS,
    aggregate,
    hidden_counts,
    release_groups,
    rule_text,
)
from moodlens.events.privacy import PHOTO_KINDS, PrivateReleases
from moodlens.events.store import EventStore, Source, utcnow
from moodlens.events.timebins import MINUTE, TimeAxis, from_us, report_period
from moodlens.settings import MIN_GROUP_SIZE, PRIVACY_EPSILON
from moodlens.spec import EMOTIONS
from moodlens.wording import plural

if TYPE_CHECKING:
    from moodlens.card import ModelCard

REPORT_FORMATS = ("html", "csv", "json")
STREAM_KINDS = ("video", "camera")

TRACK_DEFINITION = (
    "People are counted as tracks. In a video or camera stream, a track links the detections of one face from "
    "frame to frame by box position (no face recognition, no identity). A track ends when its face is not "
    "seen for the source's tracking gap (below): a person who leaves and comes back later, or who is hidden "
    "for longer than that, is counted again. In photos every detected face counts as one person, so someone "
    "who appears in several photos is counted more than once. The counts are therefore an upper bound on "
    "distinct people.")


def valence_definition() -> str:
    """The valence index definition printed on every report, built from :data:`moodlens.spec.VALENCE`."""
    return ("Valence index = 100 × (positive share − negative share), from −100 (every face negative) to +100 "
            "(every face positive). Shares are the model's expression probabilities, averaged first over each "
            "person's track and then over people, so everyone weighs the same however long they were seen. "
            f"Positive: {', '.join(VALENCE_GROUPS['positive'])}; neutral: {', '.join(VALENCE_GROUPS['neutral'])}; "
            f"negative: {', '.join(VALENCE_GROUPS['negative'])}.")


def privacy_rules(min_group_size: int, epsilon: float | None = PRIVACY_EPSILON) -> dict[str, str]:
    """The rules that hide numbers, keyed by the ``hidden_by`` value they leave, and the noise, in words."""
    noise = (f"Noise: the shares (and the valence computed from them) of every shown group carry random noise "
             f"from a differential-privacy mechanism (epsilon = {epsilon:g} per group), so one person's "
             "expressions cannot be recovered from them, even by someone who added faces of their own. The "
             "noise is larger for smaller groups and stays the same while a group's data does not change; "
             "head counts are exact." if epsilon is not None else
             "Noise: none. These shares are exact, so this report is for the operator only.")
    fewer = too_few(HIDDEN_SMALL, min_group_size)
    return {
        HIDDEN_SMALL: (f"Minimum group size: a group (the event, a time bin, a source) with {fewer} shows only "
                       "its head count, never expressions or valence." if min_group_size > 1 else
                       "Minimum group size: 1, so every group with anyone in it shows its expressions, a single "
                       "person's too."),
        HIDDEN_PHOTOS: f"Photos do not make up camera groups: a group with people from videos or cameras is "
                       f"shown only when they alone are {min_group_size} or more, because anyone holding a photo "
                       "can reproduce its faces' scores and subtract them.",
        HIDDEN_COMPLEMENT: f"Complementary rule: when the groups of a breakdown (the time bins, or the sources) "
                           f"hidden by the first rule hold {fewer} together, the "
                           "smallest shown groups are hidden too. Otherwise the event total minus the shown "
                           "groups would give away the expressions of the few hidden people.",
        "noise": noise,
    }


@dataclass
class AggregateData:
    """Aggregates ready to publish: ``data`` is what the JSON file and API hold."""

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.data, **kwargs)


@dataclass
class EventReport(AggregateData):
    """The aggregated, privacy-filtered content of one event's report."""

    timeline: pd.DataFrame = field(repr=False)
    sources: pd.DataFrame = field(repr=False)
    outside: pd.DataFrame = field(repr=False)
    axis: TimeAxis | None = field(default=None, repr=False)

    @property
    def people(self) -> int:
        return int(self.data["totals"]["people"])

    @property
    def faces(self) -> int:
        return int(self.data["totals"]["faces"])


def parse_formats(formats: str | list[str] | tuple[str, ...]) -> list[str]:
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    items = [f.strip().lower() for f in items if f.strip()]
    bad = [f for f in items if f not in REPORT_FORMATS]
    if bad or not items:
        raise ValueError(f"unknown report format(s) {bad or formats!r}; choose from {', '.join(REPORT_FORMATS)}")
    return items


@dataclass
class EventObservations:
    """An event's observations as arrays: per observation its source index (into ``sources``), person and time."""

    sources: list[Source]
    source: np.ndarray
    person: np.ndarray
    ts_us: np.ndarray
    probs: np.ndarray
    #: Where shown groups' shares come from (noisy, fixed per data version); ``None``: exact means.
    releases: PrivateReleases | None = None

    @property
    def photo(self) -> np.ndarray:
        """Per observation: whether it is a face in a photo."""
        kinds = np.array([s.kind in PHOTO_KINDS for s in self.sources] or [False])
        return kinds[self.source] if len(self.source) else np.zeros(0, bool)

    @classmethod
    def load(cls, store: EventStore, event_name: str, releases: PrivateReleases | None = None) -> EventObservations:
        sources = store.sources(event_name)
        arrays = store.observation_arrays(event_name)
        ids = np.array([s.id for s in sources], np.int64)
        source = np.searchsorted(ids, arrays["source_id"]) if len(ids) else np.zeros(0, np.int64)
        tracks = arrays["track"] - (arrays["track"].min() if len(arrays["track"]) else 0)
        _, person = np.unique(source * (int(tracks.max(initial=0)) + 1) + tracks, return_inverse=True)
        return cls(sources, source, person.reshape(-1), arrays["ts_us"], arrays["probs"], releases)

    def subset(self, mask: np.ndarray) -> EventObservations:
        _, person = np.unique(self.person[mask], return_inverse=True)
        return EventObservations(self.sources, self.source[mask], person.reshape(-1), self.ts_us[mask],
                                 self.probs[mask], self.releases)

    @property
    def people(self) -> int:
        return int(self.person.max()) + 1 if len(self.person) else 0

    def group_table(self, group: np.ndarray, n_groups: int, min_group_size: int, key: Callable[[int], str],
                    complementary: bool = True) -> pd.DataFrame:
        """The released numbers of each group (``group``: per observation, its group index; ``key``: a
        group's stable name within the event, under which its private release is recorded)."""
        agg = aggregate(group, self.person, self.probs, n_groups, self.photo)
        private = None
        if self.releases is not None and self.releases.epsilon is not None:
            order = np.argsort(agg["pair_group"], kind="stable")
            bounds = np.searchsorted(agg["pair_group"][order], np.arange(n_groups + 1))

            def private(g: int) -> np.ndarray:
                rows = agg["person_means"][order[bounds[g]:bounds[g + 1]]]
                released = self.releases.release(key(g), rows, int(agg["photo_people"][g]))
                if released is None:  # pragma: no cover - both apply the same rules to the same counts
                    raise RuntimeError(f"group {key(g)} is shown by the report but refused by its release")
                return released.shares

        return release_groups(agg["people"], agg["faces"], agg["means"], min_group_size,
                              complementary=complementary,
                              from_photos=agg["photo_people"], private=private)


def iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def when(start: datetime, end: datetime | None = None) -> str:
    """A time (or time range) as people read it: ``2025-06-01 18:15–18:30 UTC``."""
    text = start.strftime("%Y-%m-%d %H:%M")
    if end is not None:
        text += "–" + end.strftime("%H:%M" if end.date() == start.date() else "%Y-%m-%d %H:%M")
    return text + " UTC"


def build_report(store: EventStore, event_name: str, min_group_size: int = MIN_GROUP_SIZE,
                 bin_minutes: int | None = None, model: str | Path | None = "default",
                 model_card: ModelCard | None = None, epsilon: float | None = PRIVACY_EPSILON) -> EventReport:
    """Aggregate an event: totals, expression mix, timeline, sources, peaks, privacy notes, model caveats.

    ``bin_minutes``: fixed bin width (default: chosen for the event, at most ``timebins.MAX_BINS`` bins).
    ``epsilon``: privacy budget of each shown group's shares (``moodlens.events.privacy``); ``None`` gives
    exact numbers, for the operator's own analyses only.
    ``model`` (or a ``model_card``): only for sources stored before the model of each source was
    recorded at ingest; their report then says whose facts it shows.
    """
    if min_group_size < 1:
        raise ValueError("min_group_size must be at least 1")
    if bin_minutes is not None and bin_minutes < 1:
        raise ValueError("bin_minutes must be at least 1")
    releases = PrivateReleases(store, event_name, epsilon, min_group_size)
    ev = store.get_event(event_name)
    everything = EventObservations.load(store, event_name, releases)
    axis, inside = report_period(everything.ts_us, ev.starts_at, ev.ends_at,
                                 bin_minutes * MINUTE if bin_minutes else None)
    obs = everything.subset(inside)
    outside = _outside(everything, inside, axis)

    overall = obs.group_table(np.zeros(len(obs.person), np.int64), 1, min_group_size, lambda _: "overall",
                              complementary=False)
    timeline = _timeline(obs, axis, min_group_size)
    outages = store.outages(event_name)
    sources = _sources(obs, min_group_size, outages)
    models = source_models(obs.sources, model, model_card)
    sources["model"] = [models["by_source"][s.id]["name"] for s in obs.sources]

    kinds = np.array([s.kind for s in obs.sources] or [""])[obs.source]
    person_kind = np.zeros(obs.people, object)
    person_kind[obs.person] = kinds
    first, last = (from_us(obs.ts_us.min()), from_us(obs.ts_us.max())) if len(obs.ts_us) else (None, None)
    totals = {
        "people": obs.people,
        "stream_tracks": int(np.isin(person_kind, STREAM_KINDS).sum()),
        "photo_faces": int(np.isin(person_kind, PHOTO_KINDS).sum()),
        "faces": len(obs.person),
        "sources": len(obs.sources),
        "first_seen": iso(first),
        "last_seen": iso(last),
        "observations_outside_window": int((~inside).sum()),
    }
    overall_row = records(overall)[0]
    overall_row["shares"] = ({e: overall_row.pop(f"share_{e}") for e in EMOTIONS}
                             if overall_row["state"] == SHOWN else None)
    for column in SHARE_COLUMNS:
        overall_row.pop(column, None)
    peaks = _peaks(timeline, min_group_size)
    data: dict[str, Any] = {
        "event": {"name": ev.name, "description": ev.description, "starts_at": iso(ev.starts_at),
                  "ends_at": iso(ev.ends_at)},
        "generated_at": utcnow().isoformat(timespec="seconds"),
        "timezone": "UTC",
        "min_group_size": min_group_size,
        "period": axis.to_dict() if axis else None,
        "totals": totals,
        "overall": overall_row,
        "timeline": records(timeline),
        "sources": [{**row, "offline": [{"from": iso(o.started_at), "to": iso(o.ended_at), "reason": o.reason}
                                        for o in outages.get(src.id, [])]}
                    for row, src in zip(records(sources), obs.sources, strict=True)],
        "outside": records(outside),
        "peaks": peaks,
        "privacy": _privacy(overall_row, timeline, sources, min_group_size, epsilon),
        "definitions": {"people": TRACK_DEFINITION, "valence_index": valence_definition()},
        "models": models["models"],
        "unreliable_classes": models["unreliable"],
        "caveats": mf.caveats(models["models"]),
    }
    data["summary"] = summary_lines(data)
    return EventReport(data, timeline, sources, outside, axis)


def _timeline(obs: EventObservations, axis: TimeAxis | None, min_group_size: int) -> pd.DataFrame:
    if axis is None:
        frame = obs.group_table(np.zeros(0, np.int64), 0, min_group_size, str)
        return frame.assign(start=pd.Series(dtype=object), end=pd.Series(dtype=object))
    # Bins are named by their absolute start and width, so a bin keeps its release when the axis grows.
    frame = obs.group_table(axis.bin_of(obs.ts_us), axis.bins, min_group_size,
                            lambda g: f"bin:{axis.first_us + g * axis.step_us}/{axis.step_us}")
    starts = axis.starts()
    frame.insert(0, "end", [from_us(axis.first_us + (i + 1) * axis.step_us) for i in range(axis.bins)])
    frame.insert(0, "start", starts)
    return frame


def _sources(obs: EventObservations, min_group_size: int, outages: dict[int, list[Any]]) -> pd.DataFrame:
    frame = obs.group_table(obs.source, len(obs.sources), min_group_size, lambda g: f"source:{obs.sources[g].id}")
    frame.insert(0, "kind", [s.kind for s in obs.sources])
    frame.insert(0, "source", [s.label for s in obs.sources])
    frame["tracking"] = [s.tracking for s in obs.sources]
    frame["complete"] = [bool(s.finished) for s in obs.sources]
    frame["frames_dropped"] = [int(s.frames_dropped or 0) for s in obs.sources]
    # A live source's offline intervals (``to`` is empty when it never came back before the ingest ended).
    frame["offline"] = ["; ".join(f"{iso(o.started_at)} to {iso(o.ended_at) or 'the end'}"
                                  for o in outages.get(s.id, [])) for s in obs.sources]
    return frame


def _outside(obs: EventObservations, inside: np.ndarray, axis: TimeAxis | None) -> pd.DataFrame:
    """Observations left out, per source and side of the period: how many, first and last time."""
    columns = ["source", "side", "observations", "first", "last"]
    out = ~inside
    if not out.any() or axis is None:
        return pd.DataFrame(columns=columns)
    ts, source = obs.ts_us[out], obs.source[out]
    side = (ts > axis.period_end_us).astype(np.int64)  # 0 before the period, 1 after it
    frame = pd.DataFrame({"key": source * 2 + side, "ts": ts}).groupby("key")["ts"].agg(["size", "min", "max"])
    keys = frame.index.to_numpy()
    return pd.DataFrame({"source": [obs.sources[k // 2].label for k in keys],
                         "side": np.where(keys % 2, "after", "before"), "observations": frame["size"].to_numpy(),
                         "first": [from_us(v) for v in frame["min"]], "last": [from_us(v) for v in frame["max"]]},
                        columns=columns)


def source_models(sources: list[Source], fallback: str | Path | None, card: ModelCard | None) -> dict[str, Any]:
    """The model facts of every source (as stored at ingest, else the fallback), grouped by model."""
    fallback_facts: mf.ModelFacts | None = None
    grouped: dict[str, dict[str, Any]] = {}
    by_source: dict[int, dict[str, Any]] = {}
    for src in sources:
        facts = mf.ModelFacts.from_columns(src.model, src.model_version, src.model_sha256, src.model_metrics)
        if facts is None:
            if fallback_facts is None:
                fallback_facts = (mf.ModelFacts.from_card(card, recorded=False) if card is not None
                                  else mf.fallback_facts(fallback))
            facts = fallback_facts
        entry = grouped.setdefault(facts.key, {**mf.assess(facts), "sources": []})
        entry["sources"].append(src.label)
        by_source[src.id] = entry
    models = list(grouped.values())
    unreliable = sorted({c for m in models for c in m["flagged"]},
                        key=lambda c: EMOTIONS.index(c) if c in EMOTIONS else len(EMOTIONS))
    return {"models": models, "by_source": by_source, "unreliable": unreliable}


def _peaks(timeline: pd.DataFrame, min_group_size: int) -> dict[str, Any]:
    """Busiest bin, and the most positive and most negative shown bins when they differ."""
    peaks: dict[str, Any] = {}
    if not len(timeline) or not timeline["people"].any():
        return peaks
    busiest = timeline.loc[timeline["people"].idxmax()]
    peaks["busiest"] = {"start": iso(busiest["start"]), "end": iso(busiest["end"]), "people": int(busiest["people"])}
    shown = timeline[timeline["state"] == SHOWN]
    if not len(shown):
        return peaks
    valence = shown["valence_index"].astype(float)

    def entry(idx: Any) -> dict[str, Any]:
        row = shown.loc[idx]
        shares = row[SHARE_COLUMNS].astype(float)
        return {"start": iso(row["start"]), "end": iso(row["end"]), "people": int(row["people"]),
                "valence_index": float(row["valence_index"]),
                "top_expression": EMOTIONS[int(np.argmax(shares.to_numpy()))]}

    if valence.max() > valence.min():
        peaks["most_positive"] = entry(valence.idxmax())
        peaks["most_negative"] = entry(valence.idxmin())
    else:
        peaks["level"] = {**entry(valence.index[0]), "bins": len(shown)}
    return peaks


def too_few(hidden_by: str | None, min_group_size: int) -> str:
    """Why a whole group is hidden: ``fewer than 5 people`` or ``fewer than 5 people from video or cameras``
    (the photo rule: photos do not count towards camera groups)."""
    return f"fewer than {plural(min_group_size, 'person')}" + (" from video or cameras" if hidden_by == HIDDEN_PHOTOS
                                                              else "")


def breakdown_note(frame: pd.DataFrame, unit: str, min_group_size: int) -> str | None:
    """``2 of 3 sources are hidden: 1 source with fewer than 5 people and 1 source by the complementary rule.``"""
    counts = hidden_counts(frame)
    hidden = sum(counts.values())
    if not hidden:
        return None
    total = int((frame["people"] > 0).sum())
    parts = []
    if counts[HIDDEN_SMALL]:
        parts.append(f"{plural(counts[HIDDEN_SMALL], unit)} with {too_few(HIDDEN_SMALL, min_group_size)}")
    if counts[HIDDEN_PHOTOS]:
        parts.append(f"{plural(counts[HIDDEN_PHOTOS], unit)} with {too_few(HIDDEN_PHOTOS, min_group_size)}")
    if counts[HIDDEN_COMPLEMENT]:
        parts.append(f"{plural(counts[HIDDEN_COMPLEMENT], unit)} by the complementary rule")
    seen = " with people" if total < len(frame) else ""  # the empty ones are in the table too
    if total == 1:
        lead = f"The only {unit}{seen} is hidden"
    elif hidden == total:
        lead = f"All {plural(total, unit)}{seen} are hidden"
    else:
        lead = f"{hidden} of {plural(total, unit)}{seen} {'is' if hidden == 1 else 'are'} hidden"
    return f"{lead}: {' and '.join([', '.join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)}."


def _privacy(overall: dict[str, Any], timeline: pd.DataFrame, sources: pd.DataFrame,
             min_group_size: int, epsilon: float | None) -> dict[str, Any]:
    """Which rules hid what, with a sentence per breakdown that has hidden parts."""
    notes = []
    if overall["hidden_by"]:  # then every part is smaller still: one sentence says it all
        notes.append(f"The event as a whole has {too_few(overall['hidden_by'], min_group_size)}: only head counts "
                     "are shown.")
    else:
        notes += [note for frame, unit in ((sources, "source"), (timeline, "time bin"))
                  if (note := breakdown_note(frame, unit, min_group_size))]
    return {"min_group_size": min_group_size, "rules": privacy_rules(min_group_size, epsilon),
            "hidden": {"overall": overall["hidden_by"], "sources": hidden_counts(sources),
                       "time_bins": hidden_counts(timeline)},
            "notes": notes}


def summary_lines(d: dict[str, Any]) -> list[str]:
    """The report's key findings as sentences (printed by the CLI, shown at the top of the HTML)."""
    t, o = d["totals"], d["overall"]
    lines = [f"{plural(t['people'], 'person')} ({t['stream_tracks']} in video or camera, {t['photo_faces']} in "
             f"photos) and {plural(t['faces'], 'face observation')} from {plural(t['sources'], 'source')}."]
    if o["state"] == SHOWN:
        lines.append(f"Valence index {o['valence_index']:+.0f}: positive {100 * o['positive']:.0f}%, neutral "
                     f"{100 * o['neutral']:.0f}%, negative {100 * o['negative']:.0f}%; largest share: "
                     f"{max(o['shares'], key=o['shares'].__getitem__)}.")
    elif t["people"]:
        lines.append(f"{too_few(o['hidden_by'], d['min_group_size']).capitalize()}: expressions are not shown.")
    lines.extend(peak_sentences(d))
    if t["observations_outside_window"]:
        lines.append(f"{plural(t['observations_outside_window'], 'observation')} outside the report period "
                     "left out (listed under Sources).")
    lines.extend(d["privacy"]["notes"])
    return lines


def peak_sentences(d: dict[str, Any]) -> list[str]:
    """Sentences about moments: busiest bin, most positive and most negative (when they differ), or why none."""
    peaks, lines = d["peaks"], []

    def span(p: dict[str, Any]) -> str:
        return when(datetime.fromisoformat(p["start"]), datetime.fromisoformat(p["end"]))

    def moment(p: dict[str, Any]) -> str:
        return (f"{span(p)} (valence {p['valence_index']:+.0f}, {plural(p['people'], 'person')}, "
                f"mostly {p['top_expression']})")

    # "Enough people" tells which bins are shown only when no rule but the minimum hid any.
    hidden = d["privacy"]["hidden"]["time_bins"]
    enough = not (hidden[HIDDEN_PHOTOS] or hidden[HIDDEN_COMPLEMENT])
    m = d["min_group_size"]
    if "busiest" in peaks:
        lines.append(f"Busiest: {span(peaks['busiest'])} with {plural(peaks['busiest']['people'], 'person')}.")
    if "most_positive" in peaks:
        lines.append(f"Most positive: {moment(peaks['most_positive'])}.")
        lines.append(f"Most negative: {moment(peaks['most_negative'])}.")
    elif "level" in peaks:
        n = peaks["level"]["bins"]
        if n == 1:
            lead = f"Only one time bin has {m} or more people:" if enough else "Only one time bin is shown:"
        else:
            lead = f"All {n} time bins {f'with {m} or more people' if enough else 'shown'} have the same valence:"
        lines.append(f"{lead} {moment(peaks['level'])}.")
    elif d["totals"]["people"]:
        lines.append(f"No time bin has {m} or more people." if enough else "No time bin is shown (see Privacy).")
    return lines


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: ISO times, plain ints and floats, ``None`` for hidden or missing values."""
    out = []
    for row in frame.to_dict("records"):
        clean = {}
        for k, v in row.items():
            if isinstance(v, datetime):
                v = iso(v)
            elif isinstance(v, (bool, np.bool_)):
                v = bool(v)
            elif isinstance(v, (int, np.integer)):
                v = int(v)
            elif isinstance(v, (float, np.floating)):
                v = None if np.isnan(v) else round(float(v), 4)
            clean[k] = v
        out.append(clean)
    return out


def hidden_text(row: dict[str, Any], min_group_size: int) -> str:
    """``hidden: fewer than 5 people`` / ``hidden: complementary rule`` / ``no one seen`` / ``""`` for a row."""
    if row["state"] == "empty":
        return "no one seen"
    return rule_text(row.get("hidden_by"), min_group_size)
