"""The self-contained HTML event report: inline CSS, charts as base64 PNG (matplotlib), no external files.

``render_html`` gives a full page (for ``report.html``, opens offline); ``render_fragment`` only the
report body, which the web app's events page swaps in while a camera ingest is running.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display needed; must run before pyplot is imported anywhere
import numpy as np
import pandas as pd
from jinja2 import Environment, select_autoescape
from matplotlib.figure import Figure

from moodlens.events.report import EventReport
from moodlens.spec import EMOTION_COLORS_BGR, EMOTIONS


def _rgb(emotion: str) -> tuple[float, float, float]:
    b, g, r = EMOTION_COLORS_BGR[emotion]
    return (r / 255, g / 255, b / 255)


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def distribution_chart(shares: dict[str, float]) -> str:
    fig = Figure(figsize=(6, 2.8))
    ax = fig.subplots()
    values = [100 * shares[e] for e in EMOTIONS]
    ax.barh(list(EMOTIONS)[::-1], values[::-1], color=[_rgb(e) for e in EMOTIONS][::-1])
    for y, v in enumerate(values[::-1]):
        ax.text(v + 0.5, y, f"{v:.0f}%", va="center", fontsize=8)
    ax.set_xlabel("average share of expression (%)")
    ax.set_xlim(0, max(values) * 1.15 + 1)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def timeline_chart(timeline: pd.DataFrame, bin_minutes: int) -> str:
    """Stacked expression shares per time bin (suppressed bins left grey) above people per bin."""
    fig = Figure(figsize=(9, 4.6))
    ax, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    starts = pd.to_datetime(timeline["start"]).dt.tz_localize(None).to_numpy()
    width = np.timedelta64(bin_minutes * 60, "s") * 0.9
    suppressed = timeline["suppressed"].astype(bool).to_numpy()
    bottom = np.zeros(len(timeline))
    for e in EMOTIONS:
        values = 100 * timeline[f"share_{e}"].astype(float).fillna(0).to_numpy()
        ax.bar(starts, values, width=width, bottom=bottom, color=_rgb(e), label=e, align="edge")
        bottom += values
    if suppressed.any():
        ax.bar(starts[suppressed], 100, width=width, color="#dddddd", align="edge",
               label="too few people to show", hatch="//", edgecolor="#bbbbbb")
    ax.set_ylabel("expression share (%)")
    ax.set_ylim(0, 100)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax2.bar(starts, timeline["people"].astype(int), width=width, color="#555555", align="edge")
    ax2.set_ylabel("people")
    for a in (ax, ax2):
        a.spines[["top", "right"]].set_visible(False)
    fig.autofmt_xdate()
    return _png(fig)


def valence_chart(timeline: pd.DataFrame, bin_minutes: int) -> str:
    fig = Figure(figsize=(9, 2.4))
    ax = fig.subplots()
    starts = pd.to_datetime(timeline["start"]).dt.tz_localize(None) + pd.Timedelta(minutes=bin_minutes / 2)
    values = timeline["valence_index"].astype(float)
    ax.axhline(0, color="#999999", lw=0.8)
    ax.plot(starts, values, marker="o", ms=3, color="#1f5fa8")
    ax.set_ylim(-100, 100)
    ax.set_ylabel("valence index")
    ax.spines[["top", "right"]].set_visible(False)
    fig.autofmt_xdate()
    return _png(fig)


def sources_chart(sources: pd.DataFrame) -> str:
    shown = sources[~sources["suppressed"].astype(bool)]
    fig = Figure(figsize=(7, 0.5 + 0.45 * len(shown)))
    ax = fig.subplots()
    left = np.zeros(len(shown))
    labels = [str(s)[-40:] for s in shown["source"]]
    for e in EMOTIONS:
        values = 100 * shown[f"share_{e}"].astype(float).to_numpy()
        ax.barh(labels, values, left=left, color=_rgb(e), label=e)
        left += values
    ax.set_xlim(0, 100)
    ax.set_xlabel("expression share (%)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def charts(report: EventReport) -> dict[str, str]:
    d = report.data
    out: dict[str, str] = {}
    if d["overall"]["shares"]:
        out["distribution"] = distribution_chart(d["overall"]["shares"])
    if len(report.timeline):
        out["timeline"] = timeline_chart(report.timeline, d["bin_minutes"])
        if not report.timeline["suppressed"].astype(bool).all():
            out["valence"] = valence_chart(report.timeline, d["bin_minutes"])
    if len(report.sources) and not report.sources["suppressed"].astype(bool).all():
        out["sources"] = sources_chart(report.sources)
    return out


_FRAGMENT = """
<style>
.ml-report h1{margin-bottom:.2em} .ml-report h2{margin-top:1.6em;border-bottom:1px solid #ddd}
.ml-report img{max-width:100%} .ml-report table{border-collapse:collapse;margin:.6em 0}
.ml-report td,.ml-report th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
.ml-report .muted{color:#666;font-size:.9em} .ml-report .note{background:#fff6d6;padding:.5em .8em}
.ml-report .def{font-size:.93em} .ml-cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}
.ml-cards div{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:8em}
.ml-cards b{display:block;font-size:1.6em} .ml-cards span{color:#555;font-size:.85em}
</style>
<section class="ml-report" data-people="{{ d.totals.people }}" data-faces="{{ d.totals.faces }}">
<h1>{{ d.event.name }}</h1>
{% if d.event.description %}<p>{{ d.event.description }}</p>{% endif %}
<p class="muted">Window: {{ d.event.starts_at or "open" }} – {{ d.event.ends_at or "open" }} ({{ d.timezone }}).
Generated {{ d.generated_at }} {{ d.timezone }}.</p>
<div class="ml-cards">
  <div><b>{{ d.totals.people }}</b><span>people (tracks)</span></div>
  <div><b>{{ d.totals.faces }}</b><span>face observations</span></div>
  <div><b>{{ d.totals.stream_tracks }}</b><span>people in video/camera</span></div>
  <div><b>{{ d.totals.photo_faces }}</b><span>faces in photos</span></div>
  <div><b>{{ "%+.0f"|format(d.overall.valence_index) if d.overall.valence_index is not none else "–" }}</b>
       <span>valence index</span></div>
</div>
{% if d.totals.observations_outside_window %}<p class="muted">{{ d.totals.observations_outside_window }}
observations outside the event window are left out.</p>{% endif %}

<h2>Overall expression mix</h2>
{% if d.overall.suppressed %}
<p class="note">Fewer than {{ d.min_group_size }} people so far: expressions are not shown.</p>
{% else %}
<img alt="Average share of each expression" src="{{ charts.distribution }}">
<table><tr><th>expression</th><th>average share</th></tr>
{% for e in emotions %}<tr><td>{{ e }}{% if e in d.model.unreliable_classes %} *{% endif %}</td>
<td>{{ "%.1f"|format(100 * d.overall.shares[e]) }}%</td></tr>{% endfor %}
</table>
<p>Positive {{ "%.0f"|format(100 * d.overall.positive) }}% · neutral {{ "%.0f"|format(100 * d.overall.neutral) }}%
· negative {{ "%.0f"|format(100 * d.overall.negative) }}%
· <b>valence index {{ "%+.1f"|format(d.overall.valence_index) }}</b></p>
{% endif %}
<p class="def"><b>Valence index.</b> {{ d.definitions.valence_index }}</p>

<h2>Over time ({{ d.bin_minutes }}-minute bins)</h2>
{% if charts.timeline %}<img alt="Expression shares and people per time bin" src="{{ charts.timeline }}">{% endif %}
{% if charts.valence %}<img alt="Valence index per time bin" src="{{ charts.valence }}">{% endif %}
{% if not d.timeline %}<p class="note">No observations yet.</p>{% endif %}

<h2>Peak moments</h2>
<ul>
{% if d.peaks.busiest %}<li>Busiest: {{ d.peaks.busiest.start }}
 with {{ d.peaks.busiest.people }} people</li>{% endif %}
{% if d.peaks.most_positive %}<li>Most positive: {{ d.peaks.most_positive.start }}
 (valence {{ "%+.1f"|format(d.peaks.most_positive.valence_index) }}, {{ d.peaks.most_positive.people }} people,
 mostly {{ d.peaks.most_positive.top_expression }})</li>{% endif %}
{% if d.peaks.most_negative %}<li>Most negative: {{ d.peaks.most_negative.start }}
 (valence {{ "%+.1f"|format(d.peaks.most_negative.valence_index) }}, {{ d.peaks.most_negative.people }} people,
 mostly {{ d.peaks.most_negative.top_expression }})</li>{% endif %}
{% if not d.peaks.most_positive %}<li>No time bin has {{ d.min_group_size }} or more people yet.</li>{% endif %}
</ul>

<h2>Sources</h2>
{% if charts.sources %}<img alt="Expression shares per source" src="{{ charts.sources }}">{% endif %}
<table><tr><th>source</th><th>kind</th><th>people</th><th>faces</th><th>valence index</th><th>tracking</th></tr>
{% for s in d.sources %}<tr><td>{{ s.source }}{% if not s.complete %} (in progress){% endif %}</td><td>{{ s.kind }}</td>
<td>{{ s.people }}</td><td>{{ s.faces }}</td>
<td>{{ "%+.1f"|format(s.valence_index) if s.valence_index is not none else "hidden (privacy rule)" }}</td>
<td class="muted">{{ s.tracking }}</td></tr>{% endfor %}
</table>

<h2>How to read these numbers</h2>
<p class="def"><b>People.</b> {{ d.definitions.people }}</p>
<p class="def"><b>Privacy.</b> {{ d.definitions.privacy }}</p>
<p class="def"><b>Model{% if d.model.name %} ({{ d.model.name }}){% endif %}.</b></p>
<ul>{% for c in d.model.caveats %}<li>{{ c }}</li>{% endfor %}</ul>
{% if d.model.per_class %}<table><tr><th>expression</th><th>F1 on FER2013 PublicTest</th></tr>
{% for e, v in d.model.per_class.items() %}<tr><td>{{ e }}</td><td>{{ "%.2f"|format(v) }}</td></tr>{% endfor %}
</table>{% endif %}
</section>
"""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>moodlens report: {{ d.event.name }}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:980px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
footer{margin-top:2em;color:#777;font-size:.85em}
</style></head><body>
{{ fragment }}
<footer>Made with moodlens. This report holds only aggregates: no images, no face data, no identities.</footer>
</body></html>
"""

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_fragment_template = _env.from_string(_FRAGMENT)
_page_template = _env.from_string(_PAGE)


def render_fragment(report: EventReport) -> str:
    """The report body as an HTML fragment (charts inline)."""
    context: dict[str, Any] = {"d": report.data, "charts": charts(report), "emotions": EMOTIONS}
    return _fragment_template.render(**context)


def render_html(report: EventReport) -> str:
    """A complete, self-contained HTML page: opens offline, no external resources."""
    from markupsafe import Markup

    return _page_template.render(d=report.data, fragment=Markup(render_fragment(report)))
