"""Charts of reports and comparisons as inline PNG data URLs (matplotlib, no display).

Every series is one matplotlib artist (a step patch or a line over all bins), never one bar per bin,
so drawing costs the same for 1 bin and for 150. Hidden and empty bins have their own fills, named in
the legend: hatched grey for each privacy rule, pale dots for bins in which no one was seen.
"""

from __future__ import annotations

import base64
import io
from datetime import datetime

import matplotlib

matplotlib.use("Agg")  # no display needed; must run before pyplot is imported anywhere
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from moodlens.events.groups import (
    EMPTY,
    HIDDEN_COMPLEMENT,
    HIDDEN_PHOTOS,
    HIDDEN_SMALL,
    HIDING_RULES,
    SHARE_COLUMNS,
    SHOWN,
    rule_text,
)
from moodlens.spec import EMOTION_COLORS_BGR, EMOTIONS

#: Fill of the bins (or bars) whose numbers are not shown, by reason.
_STATE_STYLE = {
    HIDDEN_SMALL: {"facecolor": "#cfcfcf", "edgecolor": "#858585", "hatch": "///"},
    HIDDEN_PHOTOS: {"facecolor": "#d9d9d9", "edgecolor": "#858585", "hatch": "xx"},
    HIDDEN_COMPLEMENT: {"facecolor": "#e4e4e4", "edgecolor": "#858585", "hatch": "\\\\\\"},
    EMPTY: {"facecolor": "#f6f6f6", "edgecolor": "#c4c4c4", "hatch": ".."},
}
VALENCE_COLOR = "#1f5fa8"
PEOPLE_COLOR = "#5a5a5a"


def rgb(emotion: str) -> tuple[float, float, float]:
    b, g, r = EMOTION_COLORS_BGR[emotion]
    return (r / 255, g / 255, b / 255)


def png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def state_label(key: str, min_group_size: int) -> str:
    return "no one seen" if key == EMPTY else rule_text(key, min_group_size)


def _state_masks(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    hidden_by = frame["hidden_by"].to_numpy(object)
    return {**{rule: hidden_by == rule for rule in HIDING_RULES}, EMPTY: (frame["state"] == EMPTY).to_numpy()}


def _shade(ax, edges: np.ndarray, masks: dict[str, np.ndarray], low: float, high: float) -> None:  # noqa: ANN001
    """One step patch per state, filling ``[low, high]`` over the bins in that state."""
    for key, mask in masks.items():
        if mask.any():
            ax.stairs(np.where(mask, high, low), edges, baseline=low, fill=True, linewidth=0, **_STATE_STYLE[key])


def _legend_handles(masks: dict[str, np.ndarray], min_group_size: int) -> list[Patch]:
    return [Patch(label=state_label(k, min_group_size), **_STATE_STYLE[k]) for k, m in masks.items() if m.any()]


def timeline_chart(timeline: pd.DataFrame, edges: list[datetime], min_group_size: int) -> str:
    """Expression shares (stacked), valence and people per time bin, in one figure on one time axis."""
    x = mdates.date2num(edges)
    masks = _state_masks(timeline)
    shown = (timeline["state"] == SHOWN).to_numpy()
    fig = Figure(figsize=(9.5, 6.4), layout="constrained")
    ax, ax_val, ax_people = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.7, 1.2]})
    shares = np.where(shown[:, None], 100 * timeline[SHARE_COLUMNS].astype(float).fillna(0).to_numpy(), 0.0)
    bottom = np.zeros(len(timeline))
    for k, e in enumerate(EMOTIONS):
        ax.stairs(bottom + shares[:, k], x, baseline=bottom.copy(), fill=True, color=rgb(e), label=e, linewidth=0)
        bottom += shares[:, k]
    _shade(ax, x, masks, 0, 100)
    ax.set_ylim(0, 100)
    ax.set_ylabel("expression share (%)")
    handles = [Patch(color=rgb(e), label=e) for e in EMOTIONS] + _legend_handles(masks, min_group_size)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)

    centers = (x[:-1] + x[1:]) / 2
    valence = np.where(shown, timeline["valence_index"].astype(float).to_numpy(), np.nan)
    _shade(ax_val, x, masks, -100, 100)
    ax_val.axhline(0, color="#999999", lw=0.8)
    ax_val.plot(centers, valence, marker="o", ms=3.5, color=VALENCE_COLOR, lw=1.4)
    ax_val.set_ylim(-100, 100)
    ax_val.set_yticks([-100, -50, 0, 50, 100])
    ax_val.set_ylabel("valence index")

    ax_people.stairs(timeline["people"].astype(float).to_numpy(), x, fill=True, color=PEOPLE_COLOR, linewidth=0)
    ax_people.set_ylabel("people")
    ax_people.set_ylim(0, max(1.0, float(timeline["people"].max()) * 1.15))
    ax_people.yaxis.get_major_locator().set_params(integer=True)
    ax_people.set_xlim(x[0], x[-1])
    locator = mdates.AutoDateLocator(minticks=3, maxticks=9)
    ax_people.xaxis.set_major_locator(locator)
    ax_people.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax_people.set_xlabel("time (UTC)")
    for a in (ax, ax_val, ax_people):
        a.spines[["top", "right"]].set_visible(False)
    return png(fig)


def distribution_chart(shares: dict[str, float]) -> str:
    fig = Figure(figsize=(6, 2.8))
    ax = fig.subplots()
    values = np.array([100 * shares[e] for e in EMOTIONS])[::-1]
    ax.barh(list(EMOTIONS)[::-1], values, color=[rgb(e) for e in EMOTIONS][::-1])
    for y, v in enumerate(values):
        ax.text(v + 0.5, y, f"{v:.0f}%", va="center", fontsize=8)
    ax.set_xlabel("average share of expression (%)")
    ax.set_xlim(0, values.max() * 1.15 + 1)
    ax.spines[["top", "right"]].set_visible(False)
    return png(fig)


def mix_chart(frame: pd.DataFrame, labels: list[str], min_group_size: int, xlabel: str = "expression share (%)",
              ) -> str:
    """One stacked horizontal bar per row (a source, an event); hidden rows hatched and named by their rule."""
    n = len(frame)
    fig = Figure(figsize=(8, 0.7 + 0.42 * n))
    ax = fig.subplots()
    y = np.arange(n)[::-1]
    shown = (frame["state"] == SHOWN).to_numpy()
    shares = np.where(shown[:, None], 100 * frame[SHARE_COLUMNS].astype(float).fillna(0).to_numpy(), 0.0)
    left = np.zeros(n)
    for k, e in enumerate(EMOTIONS):
        ax.barh(y, shares[:, k], left=left, color=rgb(e), label=e, height=0.7)
        left += shares[:, k]
    masks = _state_masks(frame)
    for key, mask in masks.items():
        if mask.any():
            ax.barh(y[mask], 100, height=0.7, linewidth=0, **_STATE_STYLE[key])
            for row in np.flatnonzero(mask):
                ax.text(2, y[row], state_label(key, min_group_size), va="center", fontsize=8, color="#333333")
    ax.set_yticks(y, [str(s)[-40:] for s in labels])
    ax.set_xlim(0, 100)
    ax.set_xlabel(xlabel)
    handles = [Patch(color=rgb(e), label=e) for e in EMOTIONS] + _legend_handles(masks, min_group_size)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return png(fig)


def valence_lines_chart(series: list[tuple[str, np.ndarray]], edges: np.ndarray, ylabel: str = "valence index",
                        ylim: tuple[float, float] | None = (-100, 100)) -> str:
    """A value over normalised time (0-100 % of each event), one line per event; gaps where hidden or empty."""
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    ax = fig.subplots()
    centers = 100 * (edges[:-1] + edges[1:]) / 2
    if ylim is not None and ylim[0] < 0:
        ax.axhline(0, color="#999999", lw=0.8)
    for name, values in series:
        ax.plot(centers, values, marker="o", ms=4, lw=1.6, label=str(name)[-40:])
    ax.set_xlim(0, 100)
    if ylim is not None:
        ax.set_ylim(*ylim)
    else:  # counts
        ax.set_ylim(0, max(1.0, max(float(np.nanmax(v)) if np.isfinite(v).any() else 0.0 for _, v in series) * 1.15))
        ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("time through the event (% of its length)" + ("; gaps: hidden or no one seen"
                                                                  if ylabel == "valence index" else ""))
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return png(fig)
