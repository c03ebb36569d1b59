"""Facial expression: labels → avatar property scores, and the 70-frame ease in and out (docs/expression.md).

Usage: ``scores = expression_scores(("크게", "보통", "없음"), random.Random(0))``; ``ramp = frame_ramp(scores)``

Each label stands for a score range; a score is drawn uniformly inside it. The avatar eases from neutral
to the target over 30 frames, holds 10, and eases back over 30, along a cosine curve. The original
checked the mouth label inside the pose branch (so pose was always wrong); here each part reads its own.
"""
from __future__ import annotations

import math
import random

from .formats import EYES_LABELS, MOUTH_LABELS, POSE_LABELS

SCORE_RANGES = {  # label → [low, high] of the avatar property score
    "eyes": {"작게": (-0.2, 0.1), "보통": (0.3, 0.6), "크게": (0.8, 1.1), "아주 크게": (1.1, 1.2)},
    "mouth": {"보통": (0.4, 0.8), "크게": (1.0, 1.4), "아주 크게": (1.4, 1.6)},
    "pose": {"없음": (-0.6, 0.3), "보통": (0.8, 1.5), "많이": (1.5, 1.8)},
}
RAMP_UP_FRAMES, HOLD_FRAMES, RAMP_DOWN_FRAMES = 30, 10, 30   # 70 frames in all
assert set(SCORE_RANGES["eyes"]) == set(EYES_LABELS) and set(SCORE_RANGES["mouth"]) == set(MOUTH_LABELS)
assert set(SCORE_RANGES["pose"]) == set(POSE_LABELS)


def expression_scores(labels: tuple[str, str, str], rng: random.Random) -> dict[str, float]:
    """``{"eyes": …, "mouth": …, "pose": …}`` drawn inside each label's range (each part its own label)."""
    return {part: rng.uniform(*SCORE_RANGES[part][label]) for part, label in zip(("eyes", "mouth", "pose"), labels)}


def ramp_weights() -> list[float]:
    """Weight of the target at each of the 70 frames: cosine ease 0 → 1, hold at 1, ease 1 → 0."""
    up = [(1 - math.cos(math.pi * (i + 1) / RAMP_UP_FRAMES)) / 2 for i in range(RAMP_UP_FRAMES)]
    down = [(1 + math.cos(math.pi * (i + 1) / RAMP_DOWN_FRAMES)) / 2 for i in range(RAMP_DOWN_FRAMES)]
    return up + [1.0] * HOLD_FRAMES + down


def frame_ramp(scores: dict[str, float], neutral: dict[str, float] | None = None) -> dict[str, list[float]]:
    """Per part, the score at each of the 70 frames, easing from ``neutral`` (0) to ``scores`` and back."""
    neutral = neutral or {part: 0.0 for part in scores}
    weights = ramp_weights()
    return {part: [neutral[part] + w * (target - neutral[part]) for w in weights] for part, target in scores.items()}
