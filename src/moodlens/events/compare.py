"""Events side by side (a series of talks, a yearly open day): people, expression mix, valence over event
time and per source, under the same privacy rules as a single report.

Event time is normalised to each event's length (its report period: the window, else the observed
span), cut into :data:`SEGMENTS` equal parts, so a 1-hour talk and a 3-hour one line up start to end.
Each event's numbers come from :func:`moodlens.events.groups.release_groups`, as in its own report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from moodlens.events import model_facts as mf
from moodlens.events.groups import EMPTY, SHOWN
from moodlens.events.privacy import PrivateReleases
from moodlens.events.report import (
    AggregateData,
    EventObservations,
    breakdown_note,
    iso,
    privacy_rules,
    records,
    source_models,
    too_few,
    valence_definition,
)
from moodlens.events.store import EventStore, utcnow
from moodlens.events.timebins import US, from_us, report_period
from moodlens.settings import MIN_GROUP_SIZE, PRIVACY_EPSILON
from moodlens.spec import EMOTIONS
from moodlens.wording import plural

#: Equal parts each event's period is cut into for the valence-over-event-time comparison.
SEGMENTS = 10
#: Most events one comparison shows.
MAX_EVENTS = 12


@dataclass
class Comparison(AggregateData):
    """Events side by side: ``events`` (one row each), ``timeline`` (segments of event time), ``sources``."""

    events: pd.DataFrame = field(repr=False)
    timeline: pd.DataFrame = field(repr=False)
    sources: pd.DataFrame = field(repr=False)


def check_names(names: list[str]) -> list[str]:
    """The event names to compare: at least two, at most :data:`MAX_EVENTS`, each once."""
    names = [n for n in names if n.strip()]
    if len(names) < 2:
        raise ValueError("name at least two events to compare")
    if len(names) > MAX_EVENTS:
        raise ValueError(f"at most {MAX_EVENTS} events can be compared at once, got {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError("each event may be named only once")
    return names


def build_comparison(store: EventStore, names: list[str], min_group_size: int = MIN_GROUP_SIZE,
                     segments: int = SEGMENTS, model: str | Path | None = "default",
                     epsilon: float | None = PRIVACY_EPSILON) -> Comparison:
    """Compare events: one row per event, ``segments`` parts of each event's time, and each event's sources.

    ``model``: fallback model facts for sources stored before the model of each source was recorded.
    ``epsilon``: privacy budget of each shown group's shares, as in each event's own report (the same
    releases: an event's overall numbers here are those of its report).
    """
    if segments < 1:
        raise ValueError("segments must be at least 1")
    names = check_names(names)
    event_rows, timeline_parts, source_parts, all_sources = [], [], [], []
    notes: list[str] = []
    for name in names:
        ev = store.get_event(name)
        everything = EventObservations.load(store, name, PrivateReleases(store, name, epsilon, min_group_size))
        axis, inside = report_period(everything.ts_us, ev.starts_at, ev.ends_at)
        obs = everything.subset(inside)
        overall = obs.group_table(np.zeros(len(obs.person), np.int64), 1, min_group_size, lambda _: "overall",
                                  complementary=False)
        part = np.minimum((axis.fraction_of(obs.ts_us) * segments).astype(np.int64), segments - 1) if axis else \
            np.zeros(0, np.int64)
        timeline = obs.group_table(part, segments, min_group_size, lambda g: f"part:{g}/{segments}")
        timeline.insert(0, "to_pct", np.arange(1, segments + 1) * 100 / segments)
        timeline.insert(0, "from_pct", np.arange(segments) * 100 / segments)
        timeline.insert(0, "event", name)
        sources = obs.group_table(obs.source, len(obs.sources), min_group_size,
                                  lambda g, obs=obs: f"source:{obs.sources[g].id}")
        sources.insert(0, "kind", [s.kind for s in obs.sources])
        sources.insert(0, "source", [s.label for s in obs.sources])
        sources.insert(0, "event", name)
        row = overall.iloc[0].to_dict()
        row.update(event=name, start=iso(from_us(axis.period_start_us)) if axis else None,
                   end=iso(from_us(axis.period_end_us)) if axis else None,
                   minutes=round((axis.period_end_us - axis.period_start_us) / (60 * US), 1) if axis else None,
                   sources=len(obs.sources), outside=int((~inside).sum()))
        event_rows.append(row)
        timeline_parts.append(timeline)
        source_parts.append(sources)
        all_sources.extend(obs.sources)
        if row["hidden_by"]:
            notes.append(f"{name}: {too_few(row['hidden_by'], min_group_size)}, so only head counts are shown.")
        else:
            notes += [f"{name}: {note}" for frame, unit in ((sources, "source"), (timeline, "segment"))
                      if (note := breakdown_note(frame, unit, min_group_size))]
    events = pd.DataFrame(event_rows)
    events = events[["event", "start", "end", "minutes", "sources", "outside",
                     *[c for c in events.columns if c not in ("event", "start", "end", "minutes", "sources",
                                                              "outside")]]]
    timeline = pd.concat(timeline_parts, ignore_index=True)
    sources = pd.concat(source_parts, ignore_index=True)
    models = source_models(all_sources, model, None)
    data = {
        "events": records(events),
        "timeline": records(timeline),
        "sources": records(sources),
        "segments": segments,
        "min_group_size": min_group_size,
        "generated_at": utcnow().isoformat(timespec="seconds"),
        "timezone": "UTC",
        "privacy": {"rules": privacy_rules(min_group_size, epsilon), "notes": notes},
        "definitions": {"valence_index": valence_definition(),
                        "event_time": f"Each event's report period (its window, else the observed span) is cut "
                                      f"into {segments} equal segments; the first is the first "
                                      f"{100 / segments:g} % of that event, whatever its length."},
        "models": models["models"],
        "unreliable_classes": models["unreliable"],
        "caveats": mf.caveats(models["models"]),
    }
    data["summary"] = [_event_line(e, min_group_size) for e in data["events"]]
    return Comparison(data, events, timeline, sources)


def _event_line(e: dict[str, Any], min_group_size: int) -> str:
    if e["state"] == SHOWN:
        mood = f"valence {e['valence_index']:+.0f}, largest share: {max(EMOTIONS, key=lambda x: e[f'share_{x}'])}"
    else:
        mood = ("no one seen" if e["state"] == EMPTY else
                f"{too_few(e['hidden_by'], min_group_size)}, expressions hidden")
    return f"{e['event']}: {plural(e['people'], 'person')}, {mood}."
