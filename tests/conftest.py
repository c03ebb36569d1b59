"""Shared fixtures: the tests run on the ``tiny`` profile, built once per session into the project cache."""
import pytest

from ohlora_utils.models import provision
from ohlora_utils.profiles import get_profile


@pytest.fixture(scope="session")
def tiny_profile():
    profile = get_profile("tiny")
    provision(profile)
    return profile


@pytest.fixture(scope="session")
def small_frame():
    """Eight train and eight valid rows of the fine-tuning set."""
    from ohlora_utils.data import load_fine_tuning

    return load_fine_tuning().groupby("data_type").head(8)


@pytest.fixture(scope="session")
def tiny_adapters(tiny_profile, small_frame, tmp_path_factory):
    """All four tiny LoRA adapters, two epochs each (about a second per task): (folder, results)."""
    from ohlora_utils.finetune import task_config, train_task
    from ohlora_utils.tasks import TASK_NAMES

    root = tmp_path_factory.mktemp("adapters")
    results = {task: train_task(task, tiny_profile, task_config(task, "quick", max_steps=-1, epochs=2),
                                small_frame, out_dir=root / task, resume=False) for task in TASK_NAMES}
    return root, results
