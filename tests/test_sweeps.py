"""Threshold sweeps shared by memory retrieval and the ethics rule: counts, rates and their NaN cases."""
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from ohlora_utils.sweeps import Mark, confusion_point, f_beta, nearest, precision_recall_panels, sweep  # noqa: E402

SCORES = np.array([0.9, 0.8, 0.7, 0.4, 0.2])
POSITIVE = np.array([True, False, True, True, False])


def test_a_confusion_point_counts_hits_false_flags_and_misses():
    point = confusion_point(SCORES >= 0.75, POSITIVE)
    assert (point["flagged"], point["tp"], point["fp"], point["fn"]) == (2, 1, 1, 2)
    assert point["precision"] == 0.5 and point["recall"] == pytest.approx(1 / 3) and point["f1"] == pytest.approx(0.4)


def test_nothing_flagged_has_no_precision_and_nothing_positive_no_recall():
    assert math.isnan(confusion_point(SCORES >= 1.0, POSITIVE)["precision"])
    assert math.isnan(confusion_point(SCORES >= 0.5, np.zeros(5, dtype=bool))["recall"])


def test_a_sweep_has_one_row_per_threshold_and_recall_falls_as_it_rises():
    rows = sweep(lambda t: SCORES >= t, POSITIVE, [0.1, 0.5, 0.85])
    assert list(rows["threshold"]) == [0.1, 0.5, 0.85] and list(rows["recall"]) == [1.0, 2 / 3, 1 / 3]
    assert nearest(rows, 0.52)["threshold"] == 0.5


def test_f_beta_below_one_weighs_precision_more():
    precision, recall = pd.Series([1.0, 0.5, float("nan")]), pd.Series([0.5, 1.0, 0.0])
    scores = f_beta(precision, recall, 0.5)
    assert scores[0] > scores[1] and scores[2] == 0.0


def test_the_panels_mark_each_threshold_on_both_plots():
    fig, (curve, by_threshold) = plt.subplots(1, 2)
    rows = sweep(lambda t: SCORES >= t, POSITIVE, np.linspace(0, 1, 11))
    precision_recall_panels(curve, by_threshold, rows, [Mark(0.5, "chosen"), Mark(0.95, "original", "x")])
    labels = [line.get_label() for line in curve.lines]
    assert "chosen 0.5" in labels and "original 0.95" in labels
    assert len(by_threshold.lines) == 4   # precision, recall and two dashed marks
    plt.close(fig)
