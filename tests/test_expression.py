"""Expression labels become scores inside their ranges, each part reading its own label."""
import random

import pytest

from ohlora_utils.expression import SCORE_RANGES, expression_scores, frame_ramp, ramp_weights
from ohlora_utils.formats import EYES_LABELS, MOUTH_LABELS, POSE_LABELS


@pytest.mark.parametrize("labels", [(e, m, p) for e in EYES_LABELS for m in MOUTH_LABELS for p in POSE_LABELS])
def test_every_label_combination_lands_in_its_ranges(labels):
    scores = expression_scores(labels, random.Random(0))
    for part, label in zip(("eyes", "mouth", "pose"), labels):
        low, high = SCORE_RANGES[part][label]
        assert low <= scores[part] <= high


def test_pose_reads_the_pose_label_not_the_mouth_label():
    """The original's bug: pose was looked up with the mouth label."""
    scores = expression_scores(("보통", "아주 크게", "없음"), random.Random(1))
    assert scores["pose"] <= 0.3  # 없음; with the bug it would be drawn from a mouth/pose mix-up


def test_design_ranges():
    assert SCORE_RANGES["eyes"]["아주 크게"] == (1.1, 1.2)
    assert SCORE_RANGES["mouth"]["크게"] == (1.0, 1.4)
    assert SCORE_RANGES["pose"]["많이"] == (1.5, 1.8)


def test_ramp_is_70_frames_up_hold_down():
    weights = ramp_weights()
    assert len(weights) == 70
    assert weights[29] == pytest.approx(1.0) and weights[30:40] == [1.0] * 10 and weights[-1] == pytest.approx(0.0)
    assert all(a <= b for a, b in zip(weights[:30], weights[1:30]))        # rises
    assert all(a >= b for a, b in zip(weights[40:], weights[41:]))         # falls
    ramp = frame_ramp({"eyes": 1.0, "mouth": 0.5, "pose": -0.4})
    assert max(ramp["eyes"]) == pytest.approx(1.0) and min(ramp["pose"]) == pytest.approx(-0.4)
