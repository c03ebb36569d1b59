"""Plot helpers draw what they say: the part-of-day grid follows the time-info rule hour by hour."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from ohlora_utils.plots import day_parts_grid  # noqa: E402

MORNING, AFTERNOON, EVENING = 0, 1, 2


def test_the_day_parts_grid_follows_the_time_info_rule():
    fig, ax = plt.subplots()
    grid = day_parts_grid(ax)  # rows Monday … Sunday, columns 0 … 23 h
    plt.close(fig)
    assert grid.shape == (7, 24)
    assert grid[0, 10] == MORNING and grid[0, 13] == AFTERNOON and grid[0, 20] == EVENING
    assert grid[1, 2] == EVENING                                   # after midnight: still the evening before
    assert grid[4, 16] == AFTERNOON and grid[4, 17] == EVENING    # Friday's afternoon ends at 16:59


def test_the_step_loss_curve_shows_steps_their_mean_and_each_epochs_validation():
    import pandas as pd

    from ohlora_utils.plots import step_loss_curve

    fig, ax = plt.subplots()
    steps = pd.DataFrame({"step": range(1, 11), "train_loss": [1.0 / s for s in range(1, 11)]})
    step_loss_curve(ax, steps, pd.DataFrame({"epoch": [1.0, 2.0], "valid_loss": [0.3, 0.2]}), steps_per_epoch=5)
    assert [len(line.get_xdata()) for line in ax.lines] == [10, 10, 2]
    assert list(ax.lines[2].get_xdata()) == [5.0, 10.0]
    plt.close(fig)
