"""Small plotting helpers the notebooks share (matplotlib; Hangul labels need ``setup_notebook`` first).

Usage: ``fig, axes = plt.subplots(1, 3); bar_counts(axes[0], frame["eyes"], "eyes", order=EYES_LABELS)``
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def bar_counts(ax, values: pd.Series, title: str, order: Sequence[str] | None = None, horizontal=False):
    """Bar chart of how often each value occurs, labelled with the counts."""
    counts = values.value_counts()
    if order is not None:
        counts = counts.reindex(list(order), fill_value=0)
    bars = (ax.barh if horizontal else ax.bar)(counts.index.astype(str), counts.values, color="#6C8EBF")
    ax.bar_label(bars, padding=2, fontsize=8)
    ax.set_title(title)
    if horizontal:
        ax.invert_yaxis()
    else:
        ax.tick_params(axis="x", labelrotation=30)
    return counts


def length_histograms(axes, columns: dict[str, pd.Series], bins: int = 30):
    """One histogram of character lengths per named column."""
    for ax, (name, texts) in zip(axes, columns.items()):
        lengths = texts.str.len()
        ax.hist(lengths, bins=bins, color="#82B366")
        ax.axvline(lengths.median(), color="black", linestyle="--", linewidth=1)
        ax.set_title(f"{name} (median {lengths.median():.0f} chars)")
        ax.set_xlabel("characters")


def loss_curves(ax, logs: dict[str, pd.DataFrame], title: str = "LoRA fine-tuning: loss per epoch"):
    """Train (solid) and valid (dashed) loss per epoch, one colour per task."""
    for index, (task, log) in enumerate(logs.items()):
        colour = f"C{index}"
        ax.plot(log["epoch"], log["train_loss"], "o-", color=colour, label=f"{task} train")
        ax.plot(log["epoch"], log["valid_loss"], "s--", color=colour, label=f"{task} valid")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy on the completion")
    ax.set_title(title)
    ax.legend(fontsize=8)


def expression_plot(axes, scores: dict[str, float], ramp: dict[str, list[float]], title: str = ""):
    """Left: the three target scores; right: the 70-frame ease in, hold and ease out of each."""
    bars = axes[0].bar(list(scores), list(scores.values()), color=["#6C8EBF", "#82B366", "#D79B00"])
    axes[0].bar_label(bars, fmt="%.2f", fontsize=8)
    axes[0].set_title(title or "target scores")
    for part, values in ramp.items():
        axes[1].plot(values, label=part)
    axes[1].set_xlabel("frame")
    axes[1].set_title("70-frame ramp (30 up · 10 hold · 30 down)")
    axes[1].legend(fontsize=8)


def day_parts_grid(ax, monday=None):
    """Which part of the day (오전 · 오후 · 저녁) the time-info prefix names, for every hour of a week."""
    from datetime import datetime, timedelta

    import matplotlib.pyplot as plt
    import numpy as np

    from .timeinfo import WEEKDAYS_KO, day_and_part

    bands, monday = ["오전", "오후", "저녁"], monday or datetime(2026, 11, 23)
    grid = np.array([[bands.index(day_and_part(monday + timedelta(days=day, hours=hour))[1]) for hour in range(24)]
                     for day in range(7)])
    ax.imshow(grid, cmap=plt.get_cmap("Set2", 3), aspect="auto")
    ax.set_yticks(range(7), WEEKDAYS_KO)
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlabel("hour of the day")
    ax.set_title("part of day the prefix names (green 오전 · orange 오후 · blue 저녁)")
    return grid


def step_loss_curve(ax, steps: pd.DataFrame, history: pd.DataFrame, steps_per_epoch: int, window: int = 20,
                    ylabel: str = "MSE of cosine vs label"):
    """Every step's train loss, its moving average, and the validation loss at each epoch's end (S-BERT)."""
    ax.plot(steps["step"], steps["train_loss"], color="#B3C7E6", linewidth=0.8, label="train loss (step)")
    ax.plot(steps["step"], steps["train_loss"].rolling(window, min_periods=1).mean(), color="#3465A4",
            label=f"train loss (mean of {window})")
    if "valid_loss" in history:
        ax.plot(history["epoch"] * steps_per_epoch, history["valid_loss"], "o", color="#CC0000", label="valid loss")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend()


def grade_bars(ax, table: pd.DataFrame, label_column: str, baseline: str, title: str) -> None:
    """Share of blind-graded replies graded 2 and graded 0 per row of ``table`` (a study's table with grades,
    labelled by ``label_column``); a dotted line at the ``baseline`` row's graded 2."""
    rows = table.iloc[::-1]
    y = np.arange(len(rows))
    ax.barh(y + 0.2, rows["graded 2 %"], height=0.4, color="#5B9A68", label="graded 2 (fluent, on topic, her voice)")
    ax.barh(y - 0.2, rows["graded 0 %"], height=0.4, color="#C8675A", label="graded 0 (off topic, broken, out of character)")
    ax.set_yticks(y, rows[label_column])
    marked = table.loc[table[label_column] == baseline, "graded 2 %"]
    if len(marked):
        ax.axvline(float(marked.iloc[0]), color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("% of the replies (mean of the graders)")
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)
