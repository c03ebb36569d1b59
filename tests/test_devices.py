"""One place decides where the models run: CUDA when present, else the CPU; OHLORA_DEVICE overrides."""
import pytest
import torch

from ohlora_utils import devices, models
from ohlora_utils.devices import DEVICE_ENV, compute_device, trainer_device_args
from ohlora_utils.errors import OhloraError


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv(DEVICE_ENV, raising=False)


@pytest.fixture
def a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    monkeypatch.delenv(DEVICE_ENV, raising=False)


def test_without_a_gpu_everything_runs_on_the_cpu_in_fp32_training(no_gpu):
    assert compute_device() == "cpu"
    assert trainer_device_args() == {"use_cpu": True, "bf16": False, "fp16": False}


def test_cpu_training_autocasts_to_bf16_only_when_asked_and_the_cpu_has_it(no_gpu, monkeypatch):
    assert devices.cpu_has_bf16("flags : fpu avx512_bf16 amx_tile") and not devices.cpu_has_bf16("flags : fpu sse2")
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda cpuinfo=None: True)
    assert trainer_device_args(cpu_bf16=True)["bf16"] and not trainer_device_args()["bf16"]
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda cpuinfo=None: False)
    assert not trainer_device_args(cpu_bf16=True)["bf16"]


def test_with_a_gpu_training_and_inference_use_it_in_bf16(a_gpu):
    assert compute_device() == "cuda"
    assert trainer_device_args() == {"use_cpu": False, "bf16": True, "fp16": False}
    assert models.inference_dtype("flags : fpu sse2") == torch.bfloat16     # whatever the CPU has


def test_the_environment_variable_overrides_the_choice(a_gpu, monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert compute_device() == "cpu" and trainer_device_args()["use_cpu"]
    monkeypatch.setenv(DEVICE_ENV, "cuda:1")
    assert compute_device() == "cuda:1"


@pytest.mark.parametrize("value, message", [("cuda", "no CUDA device is visible"), ("tpu", "is not a device"),
                                            ("cuda:x", "is not a device")])
def test_an_impossible_device_is_a_clear_error(no_gpu, monkeypatch, value, message):
    monkeypatch.setenv(DEVICE_ENV, value)
    with pytest.raises(OhloraError, match=message):
        compute_device()


def test_the_chat_models_are_placed_on_the_chosen_device(tiny_profile, tiny_adapters, no_gpu):
    from ohlora_utils.generation import TaskModels
    from ohlora_utils.tasks import TASK_NAMES

    root, _ = tiny_adapters
    llms = TaskModels.load(tiny_profile, adapters={task: root / task for task in TASK_NAMES})
    assert {str(model.device) for model in llms.models.values()} == {"cpu"}
    assert devices.is_cuda("cuda:0") and not devices.is_cuda("cpu")
