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
