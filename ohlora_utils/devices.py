"""Where the models run: the one place that decides. CUDA when a GPU is visible, else the CPU.

Usage: ``device = compute_device()`` → ``"cuda"`` or ``"cpu"`` (``OHLORA_DEVICE=cpu|cuda|cuda:1|auto``
overrides); ``trainer_device_args(device)`` → the ``use_cpu`` / ``bf16`` arguments of a transformers Trainer.

Training and inference both ask here, so the ``paper`` profile (2.1B + 1.3B models) runs on a GPU where
there is one, in bf16, and the ``embedded`` profile still runs on any CPU. Multi-GPU training goes through
``accelerate launch`` (see the README); the Trainer then places each process on its own GPU.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import OhloraError

DEVICE_ENV = "OHLORA_DEVICE"   # auto (default) | cpu | cuda | cuda:N


def compute_device() -> str:
    """The device every model of this process uses (see the module docstring)."""
    import torch

    chosen = os.environ.get(DEVICE_ENV, "").strip().lower() or "auto"
    if chosen == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if chosen == "cpu":
        return "cpu"
    if chosen == "cuda" or (chosen.startswith("cuda:") and chosen[5:].isdigit()):
        if not torch.cuda.is_available():
            raise OhloraError(f"{DEVICE_ENV}={chosen} but no CUDA device is visible to this process",
                              fix=f"unset {DEVICE_ENV} (the CPU is used), or check the GPU driver with nvidia-smi")
        return chosen
    raise OhloraError(f"{DEVICE_ENV}={chosen!r} is not a device", fix="use auto, cpu, cuda or cuda:N")


def is_cuda(device: str) -> bool:
    return device.startswith("cuda")


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU computes bfloat16 natively (the AVX512-BF16 or AMX-BF16 flag in /proc/cpuinfo)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    return bool({"avx512_bf16", "amx_bf16"} & set(cpuinfo.split()))


def trainer_device_args(device: str | None = None, cpu_bf16: bool = False) -> dict:
    """``use_cpu`` and ``bf16`` for transformers' TrainingArguments: bf16 on a GPU that has it; on the CPU only
    when asked (``cpu_bf16``) and the CPU has it natively. Both trainers ask: the LoRA trainer on top of
    base weights already stored in bf16 (benchmarks/train_speed.py), the S-BERT trainer (1.6× faster steps)."""
    import torch

    device = device or compute_device()
    cuda = is_cuda(device)
    bf16 = torch.cuda.is_bf16_supported() if cuda else cpu_bf16 and cpu_has_bf16()
    return {"use_cpu": not cuda, "bf16": bf16, "fp16": False}
