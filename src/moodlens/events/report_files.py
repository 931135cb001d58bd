"""Write a report (or a comparison of events) as files: HTML, JSON and CSV tables.

Every CSV cell goes through :func:`moodlens.textsafe.csv_row`, since event, source and file names come
from users and could otherwise run as spreadsheet formulas.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from moodlens.events.compare import Comparison
from moodlens.events.report import EventReport, parse_formats
from moodlens.textsafe import csv_row

#: Columns of the tables written as CSV, in order (other columns stay in the JSON).
TIMELINE_COLUMNS = ["start", "end", "state", "hidden_by", "people", "faces", "valence_index", "positive", "neutral",
                    "negative"]
SOURCE_COLUMNS = ["source", "kind", "state", "hidden_by", "people", "faces", "valence_index", "positive", "neutral",
                  "negative"]


def write_csv_stream(stream: TextIO, rows: Iterable[Mapping[str, Any]], columns: list[str]) -> None:
    """CSV rows, formula-safe, with ``columns`` in order; times as ISO text, missing values empty."""
    writer = csv.DictWriter(stream, columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(csv_row({k: _cell(v) for k, v in row.items()}))


def write_csv(path: Path, rows: Iterable[Mapping[str, Any]], columns: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        write_csv_stream(f, rows, columns)
    return path


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return value


def frame_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dict("records")


def share_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("share_")]


def write_outputs(out_dir: str | Path, formats: str | list[str] | tuple[str, ...], data: dict[str, Any],
                  tables: dict[str, tuple[list[dict[str, Any]], list[str]]], html: Callable[[], str],
                  stem: str = "report") -> list[Path]:
    """``<stem>.json``, one CSV per table and ``<stem>.html`` (rendered only when asked for)."""
    formats = parse_formats(formats)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if "json" in formats:
        path = out / f"{stem}.json"
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        written.append(path)
    if "csv" in formats:
        written += [write_csv(out / f"{name}.csv", rows, columns) for name, (rows, columns) in tables.items()]
    if "html" in formats:
        path = out / f"{stem}.html"
        path.write_text(html(), encoding="utf-8")
        written.append(path)
    return written


def report_tables(report: EventReport) -> dict[str, tuple[list[dict[str, Any]], list[str]]]:
    """The CSV tables of an event report: summary, timeline (with each bin's ``state``), sources, outside."""
    d = report.data
    summary = [{"key": "event", "value": d["event"]["name"]}]
    summary += [{"key": k, "value": v} for k, v in d["totals"].items()]
    if d["period"]:
        summary += [{"key": f"period_{k}", "value": v} for k, v in d["period"].items()]
    summary += [{"key": "overall_state", "value": d["overall"]["state"]},
                {"key": "overall_hidden_by", "value": d["overall"]["hidden_by"]},
                {"key": "valence_index", "value": d["overall"]["valence_index"]}]
    summary += [{"key": f"share_{e}", "value": v} for e, v in (d["overall"]["shares"] or {}).items()]
    summary += [{"key": "min_group_size", "value": d["min_group_size"]}]
    shares = share_columns(report.timeline)
    return {
        "summary": (summary, ["key", "value"]),
        "timeline": (frame_rows(report.timeline), TIMELINE_COLUMNS + shares),
        "sources": (frame_rows(report.sources), SOURCE_COLUMNS + shares + ["tracking", "complete", "model",
                                                                            "frames_dropped", "offline"]),
        "outside": (frame_rows(report.outside), ["source", "side", "observations", "first", "last"]),
    }


def write_report(report: EventReport, out_dir: str | Path,
                 formats: str | list[str] | tuple[str, ...] = ("html", "csv", "json")) -> list[Path]:
    """Write ``report.html``, ``report.json`` and/or ``summary.csv``, ``timeline.csv``, ``sources.csv``,
    ``outside.csv``; returns the paths written."""
    from moodlens.events.report_html import render_html

    return write_outputs(out_dir, formats, report.data, report_tables(report), lambda: render_html(report))


def comparison_tables(comparison: Comparison) -> dict[str, tuple[list[dict[str, Any]], list[str]]]:
    """The CSV tables of a comparison: one row per event, per part of event time, per source."""
    shares = share_columns(comparison.events)
    head = ["state", "hidden_by", "people", "faces", "valence_index", "positive", "neutral", "negative"]
    return {
        "events": (frame_rows(comparison.events), ["event", "start", "end", "minutes", "sources", "outside",
                                                    *head, *shares]),
        "event_time": (frame_rows(comparison.timeline), ["event", "from_pct", "to_pct", *head, *shares]),
        "event_sources": (frame_rows(comparison.sources), ["event", "source", "kind", *head, *shares]),
    }


def write_comparison(comparison: Comparison, out_dir: str | Path,
                     formats: str | list[str] | tuple[str, ...] = ("html", "csv", "json")) -> list[Path]:
    """Write ``comparison.html``, ``comparison.json`` and/or ``events.csv``, ``event_time.csv``,
    ``event_sources.csv``; returns the paths written."""
    from moodlens.events.compare_html import render_comparison_html

    return write_outputs(out_dir, formats, comparison.data, comparison_tables(comparison),
                         lambda: render_comparison_html(comparison), stem="comparison")
