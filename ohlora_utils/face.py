"""Her face from the expression scores: eye openness, mouth opening and head turn, drawn with matplotlib shapes.

Usage::

    draw_face(ax, {"eyes": 0.9, "mouth": 1.2, "pose": 0.2})     # one face on a matplotlib axis
    save_animation(path, scores)        # the 70-frame ease in, hold and ease out as a small GIF

The original drives a generated avatar with these three scores (docs/expression.md); a few ellipses show
the same numbers where people would rather look than read. Each score is placed inside the span of its
labels' ranges (``expression.SCORE_RANGES``): eyes from almost shut (작게) to wide open (아주 크게), mouth
from a closed smile (보통) to wide open (아주 크게), pose from facing the viewer (없음) to turned far (많이) —
the features then slide sideways and the far eye narrows. Matplotlib is imported only when drawing.
"""
from __future__ import annotations

from pathlib import Path

from .expression import SCORE_RANGES, frame_ramp

SKIN, HAIR, FEATURE, LIPS, BLUSH = "#F6D7C3", "#5B3A29", "#2B2B2B", "#C0504D", "#F2A7A7"
EYE_X, EYE_Y, MOUTH_Y = 0.38, 0.18, -0.48   # feature positions on a head of radius about 1
MAX_SHIFT = 0.35                            # how far the features slide at the strongest head turn
ANIMATION_FPS = 30                          # 70 frames play in about 2.3 s


def openness(part: str, score: float) -> float:
    """``score`` placed in the span of ``part``'s label ranges: 0 at the lowest label's low end, 1 at the
    highest label's high end (clipped)."""
    low = min(low for low, _ in SCORE_RANGES[part].values())
    high = max(high for _, high in SCORE_RANGES[part].values())
    return min(1.0, max(0.0, (score - low) / (high - low)))


def face_geometry(scores: dict[str, float]) -> dict[str, float]:
    """The shapes' sizes and positions for ``scores``: eye height, mouth height and width, sideways shift."""
    eyes, mouth, turn = (openness(part, scores[part]) for part in ("eyes", "mouth", "pose"))
    return {"eye_height": 0.03 + 0.22 * eyes, "mouth_height": 0.03 + 0.30 * mouth,
            "mouth_width": 0.36 + 0.16 * mouth, "shift": MAX_SHIFT * turn, "far_eye_scale": 1.0 - 0.35 * turn}


def draw_face(ax, scores: dict[str, float], title: str = "") -> dict[str, float]:
    """Draw the face for ``scores`` on ``ax`` (cleared first); returns the geometry it drew."""
    from matplotlib.patches import Circle, Ellipse

    shape = face_geometry(scores)
    shift = shape["shift"]
    ax.clear()
    ax.add_patch(Ellipse((0, 0.22), 2.25, 2.15, color=HAIR, zorder=0))
    ax.add_patch(Ellipse((0.25 * shift, 0), 1.85 - 0.15 * shift, 2.1, color=SKIN, zorder=1))
    for side, scale in ((-1, 1.0), (1, shape["far_eye_scale"])):
        x = side * EYE_X * (1 - 0.3 * shift) + shift
        height = shape["eye_height"]
        ax.add_patch(Ellipse((x, EYE_Y), 0.30 * scale, height, color="white", ec=FEATURE, lw=1.5, zorder=2))
        if height > 0.06:
            ax.add_patch(Circle((x + 0.04 * shift, EYE_Y), min(0.07, height / 2.5) * scale, color=FEATURE, zorder=3))
        ax.add_patch(Ellipse((x, -0.12), 0.22 * scale, 0.1, color=BLUSH, alpha=0.6, zorder=2))
    ax.add_patch(Ellipse((0.9 * shift, MOUTH_Y), shape["mouth_width"], shape["mouth_height"], color=LIPS, zorder=2))
    ax.set(xlim=(-1.3, 1.3), ylim=(-1.25, 1.35), aspect="equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return shape


def save_animation(path: Path | str, scores: dict[str, float], size_inches: float = 2.2, dpi: int = 60) -> Path:
    """The 70-frame ease from neutral to ``scores``, hold and back (``expression.frame_ramp``) as a GIF."""
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    ramp = frame_ramp(scores)
    frames = len(next(iter(ramp.values())))
    fig, ax = plt.subplots(figsize=(size_inches, size_inches))
    animation = FuncAnimation(fig, lambda i: draw_face(ax, {part: ramp[part][i] for part in ramp}), frames=frames)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    animation.save(str(path), writer=PillowWriter(fps=ANIMATION_FPS), dpi=dpi)
    plt.close(fig)
    return path
