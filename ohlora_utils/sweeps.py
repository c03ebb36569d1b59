"""Threshold sweeps: how "flag when the score reaches t" fares against the truth, at each t of a grid —
one implementation for memory retrieval (notebook 03) and the ethics rule (notebook 04).

Usage::

    point = confusion_point(scores >= 0.9, positive)            # flagged, tp, fp, fn, precision, recall, f1
    rows = sweep(lambda t: scores >= t, positive, grid)          # one row per threshold
    precision_recall_panels(curve_ax, threshold_ax, rows, [Mark(0.93, "chosen"), Mark(0.95, "original")])

Precision is NaN where nothing is flagged (no evidence either way); recall is NaN where nothing is positive.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import pandas as pd


def ratio(part: float, whole: float) -> float:
    return part / whole if whole else float("nan")


def confusion_point(flagged, positive) -> dict:
    """Counts and rates of ``flagged`` (bool array) against ``positive`` (bool array of the same shape)."""
    flagged, positive = np.asarray(flagged, dtype=bool), np.asarray(positive, dtype=bool)
    tp, fp, fn = int((flagged & positive).sum()), int((flagged & ~positive).sum()), int((~flagged & positive).sum())
    return {"flagged": tp + fp, "tp": tp, "fp": fp, "fn": fn, "precision": ratio(tp, tp + fp),
            "recall": ratio(tp, tp + fn), "f1": ratio(2 * tp, 2 * tp + fp + fn)}


def sweep(flag_at: Callable[[float], np.ndarray], positive, grid: Iterable[float]) -> pd.DataFrame:
    """``confusion_point(flag_at(t), positive)`` for every ``t`` of ``grid``, one row each."""
    return pd.DataFrame([{"threshold": float(t), **confusion_point(flag_at(t), positive)} for t in grid])


def f_beta(precision: pd.Series, recall: pd.Series, beta: float) -> pd.Series:
    """F-beta per row (0 where precision and recall are both 0); beta < 1 weighs precision above recall."""
    precision = precision.fillna(0.0)
    denominator = beta ** 2 * precision + recall
    return ((1 + beta ** 2) * precision * recall / denominator.where(denominator > 0, 1.0)).fillna(0.0)


def nearest(rows: pd.DataFrame, threshold: float) -> pd.Series:
    """The sweep row whose threshold is closest to ``threshold``."""
    return rows.loc[(rows["threshold"] - threshold).abs().idxmin()]


@dataclass
class Mark:
    threshold: float
    label: str                # "chosen", "original", …
    marker: str = "o"
    color: str = "#D6612D"


def precision_recall_panels(curve_ax, threshold_ax, rows: pd.DataFrame, marks: list[Mark], title: str = "",
                            curve_labels: tuple[str, str] = ("recall", "precision")) -> None:
    """Left/top: the precision–recall curve with each mark's point (drawn at precision 1 where it flags
    nothing); right/bottom: precision and recall against the threshold, each mark a dashed line."""
    curve_ax.plot(rows["recall"], rows["precision"], marker=".", color="#6C8EBF")
    threshold_ax.plot(rows["threshold"], rows["precision"], label="precision")
    threshold_ax.plot(rows["threshold"], rows["recall"], label="recall")
    for mark in marks:
        point = nearest(rows, mark.threshold)
        precision = 1.0 if np.isnan(point["precision"]) else point["precision"]
        curve_ax.plot(point["recall"], precision, mark.marker, color=mark.color, markersize=9,
                      label=f"{mark.label} {mark.threshold:g}")
        threshold_ax.axvline(mark.threshold, linestyle="--", color=mark.color, linewidth=1,
                             label=f"{mark.label} {mark.threshold:g}")
    curve_ax.set(title=title, xlabel=curve_labels[0], ylabel=curve_labels[1], xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
    threshold_ax.set(xlabel="threshold", xlim=(rows["threshold"].min(), rows["threshold"].max()), ylim=(-0.02, 1.02))
    curve_ax.legend(loc="lower left", fontsize=8)
    threshold_ax.legend(loc="lower left", fontsize=8)
