"""The comparison of events as self-contained HTML (same look as the event report; charts inline)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from markupsafe import Markup

from moodlens.events import charts
from moodlens.events.compare import Comparison
from moodlens.events.groups import SHOWN
from moodlens.events.report import hidden_text, when
from moodlens.events.report_html import REPORT_CSS, env, render_page
from moodlens.wording import plural


def comparison_charts(comparison: Comparison) -> dict[str, str]:
    d = comparison.data
    out: dict[str, str] = {}
    events = comparison.events
    names = list(events["event"])
    if (events["people"] > 0).any():
        out["mix"] = charts.mix_chart(events, names, d["min_group_size"])
    timeline = comparison.timeline
    edges = np.linspace(0.0, 1.0, d["segments"] + 1)
    valence, people = [], []
    for name in names:
        part = timeline[timeline["event"] == name]
        shown = (part["state"] == SHOWN).to_numpy()
        valence.append((name, np.where(shown, part["valence_index"].astype(float).to_numpy(), np.nan)))
        people.append((name, part["people"].astype(float).to_numpy()))
    if (timeline["state"] == SHOWN).any():
        out["valence"] = charts.valence_lines_chart(valence, edges)
    if (timeline["people"] > 0).any():
        out["people"] = charts.valence_lines_chart(people, edges, ylabel="people", ylim=None)
    return out


def render_comparison_fragment(comparison: Comparison) -> str:
    d = comparison.data
    return env.get_template("compare.html").render(
        d=d, charts=comparison_charts(comparison), css=Markup(REPORT_CSS), plural=plural,
        hidden=lambda row: hidden_text(row, d["min_group_size"]),
        span=lambda start, end: when(datetime.fromisoformat(start), datetime.fromisoformat(end)))


def render_comparison_html(comparison: Comparison) -> str:
    names = ", ".join(e["event"] for e in comparison.data["events"])
    return render_page(render_comparison_fragment(comparison), names, kind="comparison")
