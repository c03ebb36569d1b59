"""Her face from the expression scores: the shapes follow the scores, and the 70-frame animation is saved."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from ohlora_utils.expression import HOLD_FRAMES, RAMP_DOWN_FRAMES, RAMP_UP_FRAMES  # noqa: E402
from ohlora_utils.face import draw_face, face_geometry, openness, save_animation  # noqa: E402

NEUTRAL = {"eyes": 0.45, "mouth": 0.6, "pose": -0.2}


def test_openness_spans_the_labels_ranges_and_is_clipped():
    assert openness("eyes", -0.2) == 0.0 and openness("eyes", 1.2) == 1.0
    assert openness("mouth", 5.0) == 1.0 and openness("pose", -3.0) == 0.0
    assert 0 < openness("eyes", 0.45) < openness("eyes", 0.9) < 1


@pytest.mark.parametrize("part, key", [("eyes", "eye_height"), ("mouth", "mouth_height"), ("pose", "shift")])
def test_a_higher_score_draws_a_larger_feature(part, key):
    low, high = face_geometry(NEUTRAL), face_geometry({**NEUTRAL, part: NEUTRAL[part] + 0.8})
    assert high[key] > low[key]
    assert all(high[k] == low[k] for k in low if k != key and not (part == "mouth" and k == "mouth_width")
               and not (part == "pose" and k == "far_eye_scale"))


def test_draw_face_draws_on_the_axis_and_clears_it_first():
    fig, ax = plt.subplots()
    draw_face(ax, NEUTRAL, title="turn 1")
    first = len(ax.patches)
    draw_face(ax, {"eyes": 1.2, "mouth": 1.6, "pose": 1.8})
    assert first == len(ax.patches) >= 8 and ax.get_title() == ""
    plt.close(fig)


def test_the_animation_is_a_gif_of_the_70_frame_ramp(tmp_path):
    path = save_animation(tmp_path / "face.gif", {"eyes": 1.0, "mouth": 1.3, "pose": 1.6}, size_inches=1.0, dpi=30)
    with Image.open(path) as gif:
        durations = []
        for index in range(gif.n_frames):   # the GIF writer merges the held, identical frames into one
            gif.seek(index)
            durations.append(gif.info["duration"])
    frames = RAMP_UP_FRAMES + HOLD_FRAMES + RAMP_DOWN_FRAMES
    assert frames == 70 and gif.format == "GIF" and RAMP_UP_FRAMES + RAMP_DOWN_FRAMES <= len(durations) <= frames
    assert abs(sum(durations) - frames * durations[0]) <= durations[0]   # it plays all 70 frames' time
