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


@pytest.fixture(scope="session")
def ethics_small_dataset():
    """A few ethics prompts of each category in each split (train 9, valid 2, test 3)."""
    import pandas as pd
    from ohlora_utils.data import load_ethics

    frame = load_ethics()
    return pd.concat([frame[frame["split"] == split].groupby("category").head(n)
                      for split, n in (("train", 9), ("valid", 2), ("test", 3))])


@pytest.fixture(scope="session")
def ethics_trained(tiny_profile, ethics_small_dataset, tmp_path_factory):
    """A tiny ethics S-BERT trained for four steps on ``ethics_small_dataset``: (folder, epoch log)."""
    from ohlora_utils.ethics_study import train_ethics
    from ohlora_utils.sbert_training import SbertTrainConfig

    model_dir = tmp_path_factory.mktemp("ethics") / "sbert_ethics"
    config = SbertTrainConfig(epochs=1, batch_size=8, max_steps=4, learning_rate=1e-3)
    return model_dir, train_ethics(tiny_profile, config, model_dir, dataset=ethics_small_dataset)


@pytest.fixture(scope="session")
def ethics_classifier(ethics_trained):
    """The trained tiny classifier, shared: tests that fake its scores do so through monkeypatch."""
    from ohlora_utils.ethics import load_classifier

    return load_classifier(ethics_trained[0])


@pytest.fixture(scope="session")
def memory_trained(tiny_profile, tmp_path_factory):
    """A tiny memory S-BERT trained for three steps, threshold 0.5: (folder, what ``memory_study.run`` returned)."""
    from ohlora_utils.memory_study import run
    from ohlora_utils.sbert_training import SbertTrainConfig

    out = tmp_path_factory.mktemp("memory") / "sbert_memory"
    return out, run(tiny_profile, SbertTrainConfig(max_steps=3, batch_size=8, in_batch=True), threshold="0.5",
                    out_dir=out)
