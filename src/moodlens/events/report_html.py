"""The self-contained HTML event report: inline CSS, charts as base64 PNG, no external files.

``render_html`` gives a full page (for ``report.html``, opens offline); ``render_fragment`` only the
report body, which the web app's events page swaps in while a camera ingest is running.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from moodlens.events import charts
from moodlens.events.groups import SHOWN
from moodlens.events.model_facts import MIN_TEST_SUPPORT, RELIABLE_SCORE
from moodlens.events.report import EventReport, hidden_text, peak_sentences, when
from moodlens.events.timebins import from_us
from moodlens.spec import EMOTIONS
from moodlens.wording import plural

#: Styles shared by the report and the comparison (both are swapped into web pages as fragments).
REPORT_CSS = """
.ml-report h1{margin-bottom:.2em} .ml-report h2{margin-top:1.6em;border-bottom:1px solid #ddd}
.ml-report img{max-width:100%} .ml-report table{border-collapse:collapse;margin:.6em 0}
.ml-report td,.ml-report th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
.ml-report .muted{color:#666;font-size:.9em} .ml-report .note{background:#fff6d6;padding:.5em .8em}
.ml-report .def{font-size:.93em} .ml-cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}
.ml-cards div{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:8em}
.ml-cards b{display:block;font-size:1.6em} .ml-cards span{color:#555;font-size:.85em}
.ml-report .hidden-cell{color:#555;font-style:italic} .ml-report .flag{color:#a33;font-weight:600}
.ml-report ul.summary li{margin:.2em 0} .ml-report details{margin:.6em 0}
"""

#: The report, comparison and page templates (``moodlens/events/templates``), HTML-escaped throughout.
env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                  autoescape=select_autoescape(default=True, default_for_string=True))


def report_charts(report: EventReport) -> dict[str, str]:
    d = report.data
    out: dict[str, str] = {}
    if d["overall"]["state"] == SHOWN:
        out["distribution"] = charts.distribution_chart(d["overall"]["shares"])
    if len(report.timeline):
        edges = [*report.timeline["start"], report.timeline["end"].iloc[-1]]
        out["timeline"] = charts.timeline_chart(report.timeline, edges, d["min_group_size"])
    if len(report.sources) and (report.sources["people"] > 0).any():
        visible = report.sources[report.sources["people"] > 0]
        out["sources"] = charts.mix_chart(visible, list(visible["source"]), d["min_group_size"])
    return out


def render_fragment(report: EventReport) -> str:
    """The report body as an HTML fragment (charts inline)."""
    d = report.data
    axis = report.axis
    period_text = when(from_us(axis.first_us), from_us(axis.first_us + axis.bins * axis.step_us)) if axis else ""
    return env.get_template("report.html").render(
        d=d, charts=report_charts(report), emotions=EMOTIONS, css=Markup(REPORT_CSS), period_text=period_text,
        peak_lines=peak_sentences(d) or ["No observations yet."], plural=plural, reliable=RELIABLE_SCORE,
        min_support=MIN_TEST_SUPPORT, hidden=lambda row: hidden_text(row, d["min_group_size"]))


def render_page(fragment: str, title: str, kind: str = "report") -> str:
    """A complete, self-contained HTML page around a fragment: opens offline, no external resources."""
    return env.get_template("page.html").render(fragment=Markup(fragment), title=title, kind=kind)


def render_html(report: EventReport) -> str:
    return render_page(render_fragment(report), report.data["event"]["name"])
