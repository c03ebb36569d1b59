"""Guarded inference for the four tasks: stop at the end marker, validate, retry, fall back (docs/fine_tuning.md).

Usage::

    llms = TaskModels.load(get_profile())                       # one base model per architecture
    answers = answer_batch(llms, "output_message", prompts, weekday="토요일", seed=0)
    answers[0].text, answers[0].tries, answers[0].fell_back

One base model per architecture holds all its task adapters side by side (PEFT named adapters) and
switches per call — not one model copy per task, as the original did. Generation samples at the task's
temperature and stops at its end marker. An answer is retried (temperature +0.1 each time, at most five
tries) when it is empty, never reached its end marker, contains another marker or ``http``, names the
wrong weekday (replies), or is not a well-formed expression; after that the original's fallback is used:
``(읽씹)`` for a reply, nothing for a summary or memory, ``(눈 보통, 입 보통, 고개 돌림 없음)`` for the face.
Memory answers are normalised to exactly one ``[key: value]`` (or none).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .devices import compute_device
from .errors import OhloraError
from .adapters import adapter_dir, read_adapter_meta
from .formats import MEMORY_ITEM, format_memory_item, parse_expression
from .models import load_causal_lm
from .profiles import Profile
from .tasks import TASK_NAMES, TASKS, all_markers
from .timeinfo import wrong_weekday_mentions

MAX_TRIES = 5               # the original's limit before falling back
RETRY_TEMPERATURE_STEP = 0.1
GENERATION_BATCH = 16       # prompts generated together


class EndMarkerStop:
    """Stopping criterion: a row is done once its generated text contains the end marker.

    It decodes only the last few tokens of each row per step, so it costs microseconds and is built
    without scanning the vocabulary (``generate(stop_strings=...)`` rebuilds a 262k-token table on
    every call for Gemma, about 2 s).
    """

    def __init__(self, tokenizer, markers: str | list[str], prompt_length: int, lookback: int = 24):
        self.tokenizer, self.markers, self.prompt_length, self.lookback = tokenizer, markers, prompt_length, lookback

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        start = max(self.prompt_length, input_ids.shape[1] - self.lookback)
        tails = self.tokenizer.batch_decode(input_ids[:, start:], skip_special_tokens=True)
        markers = [self.markers] * len(tails) if isinstance(self.markers, str) else self.markers
        return torch.tensor([marker in tail for marker, tail in zip(markers, tails)], device=input_ids.device)


class RowTemperature:
    """Logits processor dividing each row by its own temperature (rows of different tasks in one batch)."""

    def __init__(self, temperatures: list[float]):
        self.temperatures = torch.tensor(temperatures).unsqueeze(1)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return scores / self.temperatures.to(device=scores.device, dtype=scores.dtype)


@dataclass
class Generation:
    text: str       # the completion up to (not including) the end marker, stripped
    ended: bool     # whether the end marker was reached


@dataclass
class Answer:
    task: str
    text: str | None                 # the final, validated (and normalised) answer; None = no answer
    tries: int
    seconds: float
    fell_back: bool
    attempts: list[str] = field(default_factory=list)   # raw text of every try
    problems: list[str] = field(default_factory=list)   # why each rejected try was rejected


class TaskModels:
    """The profile's base models, each with the adapters of the tasks it serves."""

    def __init__(self, profile: Profile, models: dict, tokenizers: dict):
        self.profile, self.models, self.tokenizers = profile, models, tokenizers

    @classmethod
    def load(cls, profile: Profile, tasks=TASK_NAMES, adapters: dict[str, Path] | None = None, dtype=None,
             restrict_vocabulary: bool = False):
        """Each base model once, with its tasks' adapters; ``dtype`` (default fp32) for the base weights;
        ``restrict_vocabulary`` samples from the study's vocabulary only (``vocabulary.py``: faster)."""
        from peft import PeftModel

        from .vocabulary import restrict_output_layer, study_token_ids

        adapters = adapters or {task: adapter_dir(profile, task) for task in tasks}
        device = compute_device()
        models, tokenizers = {}, {}
        for source in profile.llm_sources():
            served = [task for task in profile.tasks_of(source) if task in adapters]
            if not served:
                continue
            for task in served:
                meta = read_adapter_meta(adapters[task])
                if meta.get("base_model") != source.key:
                    raise OhloraError(
                        f"the {task} adapter in {adapters[task]} was trained on {meta.get('base_model')}, "
                        f"but profile {profile.name} runs {task} on {source.key}",
                        fix=f"train the adapters for profile {profile.name} (notebook 02) or pick the matching profile")
            base, tokenizer = load_causal_lm(source, dtype)
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            model = None
            for task in served:
                try:
                    if model is None:
                        model = PeftModel.from_pretrained(base, str(adapters[task]), adapter_name=task)
                    else:
                        model.load_adapter(str(adapters[task]), adapter_name=task)
                except Exception as cause:  # a damaged adapter file surfaces as any of several library errors
                    raise OhloraError(f"the {task} adapter in {adapters[task]} could not be loaded "
                                      f"({type(cause).__name__}: {cause})",
                                      fix="delete the folder and train it again (notebook 02, or make reproduce)") from None
            model.eval().to(device)
            if restrict_vocabulary:
                restrict_output_layer(model.get_base_model(), study_token_ids(tokenizer))
            for task in served:
                models[task], tokenizers[task] = model, tokenizer
        return cls(profile, models, tokenizers)

    @property
    def tasks(self) -> list[str]:
        return list(self.models)

    def distinct_models(self) -> int:
        return len({id(model) for model in self.models.values()})

    def generate(self, task: str, prompts: list[str], temperature: float, seed: int | None = None,
                 max_new_tokens: int | None = None) -> list[Generation]:
        """Sample one completion per prompt with ``task``'s adapter, stopping at its end marker."""
        return self.generate_mixed([(task, prompt, temperature) for prompt in prompts], seed, max_new_tokens)

    def generate_mixed(self, requests: list[tuple[str, str, float]], seed: int | None = None,
                       max_new_tokens: int | None = None) -> list[Generation]:
        """One completion per ``(task, prompt, temperature)``; rows of one base model share a batch.

        Rows of different tasks run in the same ``generate`` call with PEFT's per-row ``adapter_names``,
        a per-row temperature and a per-row end marker, so e.g. the reply and the memory extraction of a
        turn cost one pass over the weights per token instead of two.
        """
        unknown = sorted({task for task, _, _ in requests if task not in self.models})
        if unknown:
            raise OhloraError(f"no adapter loaded for task(s) {', '.join(map(repr, unknown))}",
                              fix=f"loaded: {', '.join(self.models) or 'none'}")
        results: list[Generation | None] = [None] * len(requests)
        by_model: dict[int, list[int]] = {}
        for index, (task, _, _) in enumerate(requests):
            by_model.setdefault(id(self.models[task]), []).append(index)
        for indices in by_model.values():
            for start in range(0, len(indices), GENERATION_BATCH):
                batch = indices[start:start + GENERATION_BATCH]
                for index, generation in zip(batch, self._generate_rows([requests[i] for i in batch],
                                                                        seed if seed is None else seed + start,
                                                                        max_new_tokens)):
                    results[index] = generation
        return results

    def _generate_rows(self, rows, seed, max_new_tokens) -> list[Generation]:
        tasks = [task for task, _, _ in rows]
        model, tokenizer = self.models[tasks[0]], self.tokenizers[tasks[0]]
        markers = [TASKS[task].end_marker for task in tasks]
        encoded = tokenizer([prompt for _, prompt, _ in rows], return_tensors="pt", padding=True,
                            padding_side="left").to(model.device)
        length = encoded["input_ids"].shape[1]
        if seed is not None:
            torch.manual_seed(seed)
        if len(set(tasks)) == 1:   # one adapter: the plain (faster) path
            model.set_adapter(tasks[0])
            adapter_kwargs = {}
        else:
            adapter_kwargs = {"adapter_names": tasks}
        temperatures = [temperature for _, _, temperature in rows]
        with torch.inference_mode():
            output = model.generate(
                **encoded, **adapter_kwargs, do_sample=True, temperature=1.0,
                logits_processor=[RowTemperature(temperatures)],
                max_new_tokens=max_new_tokens or max(TASKS[task].max_new_tokens for task in tasks),
                pad_token_id=tokenizer.pad_token_id, stopping_criteria=[EndMarkerStop(tokenizer, markers, length)],
            )
        generations = []
        for marker, text in zip(markers, tokenizer.batch_decode(output[:, length:], skip_special_tokens=True)):
            generations.append(Generation(text.split(marker)[0].strip(), marker in text))
        return generations


def rejection_reasons(task: str, generation: Generation, weekday: str | None = None) -> list[str]:
    """Why the original would retry this answer (empty list: accept it)."""
    text, reasons = generation.text, []
    if not generation.ended:
        reasons.append("no end marker")
    if not text and task != "memory":  # "no memory" is a valid memory answer
        reasons.append("empty")
    if any(marker in text for marker in all_markers()):
        reasons.append("contains a marker")
    if "http" in text.lower():
        reasons.append("contains http")
    if task == "output_message" and weekday and wrong_weekday_mentions(text, weekday):
        reasons.append("wrong weekday")
    if task == "eyes_mouth_pose" and text and parse_expression(text) is None:
        reasons.append("not an expression")
    return reasons


def normalise(task: str, text: str) -> str | None:
    """The accepted answer as the chat uses it: memory → one ``[key: value]`` or None."""
    if task == "memory":
        # an item whose key or value is only spaces ("[취미:  ]") is nothing to remember, not an item the
        # store would refuse in the middle of a turn
        for match in MEMORY_ITEM.finditer(text):
            if match.group(1).strip() and match.group(2).strip():
                return format_memory_item(match.group(1), match.group(2))
        return None
    return text


def answer_batch(models: TaskModels, task: str, prompts: list[str], weekday: str | list[str | None] | None = None,
                 seed: int = 0, max_tries: int = MAX_TRIES) -> list[Answer]:
    """Guarded answers of one task for ``prompts`` (see ``answer_requests``)."""
    weekdays = weekday if isinstance(weekday, list) else [weekday] * len(prompts)
    return answer_requests(models, [(task, prompt, day) for prompt, day in zip(prompts, weekdays)], seed, max_tries)


def answer_requests(models: TaskModels, requests: list[tuple[str, str, str | None]], seed: int = 0,
                    max_tries: int = MAX_TRIES) -> list[Answer]:
    """Guarded answers for ``(task, prompt, weekday)`` rows, tasks mixed: each row is retried at its
    temperature + 0.1 per retry until valid or ``max_tries``, then gets its task's fallback."""
    answers = [Answer(task, None, 0, 0.0, False) for task, _, _ in requests]
    pending = list(range(len(requests)))
    for attempt in range(max_tries):
        if not pending:
            break
        started = time.perf_counter()
        batch = [(requests[i][0], requests[i][1], TASKS[requests[i][0]].temperature + RETRY_TEMPERATURE_STEP * attempt)
                 for i in pending]
        generations = models.generate_mixed(batch, seed=seed + 7919 * attempt)
        share = (time.perf_counter() - started) / len(pending)  # batch time split evenly among its rows
        still_pending = []
        for index, generation in zip(pending, generations):
            task, _, weekday = requests[index]
            answer = answers[index]
            answer.tries += 1
            answer.seconds += share
            answer.attempts.append(generation.text)
            reasons = rejection_reasons(task, generation, weekday)
            if reasons:
                answer.problems.append(", ".join(reasons))
                still_pending.append(index)
            else:
                answer.text = normalise(task, generation.text)
        pending = still_pending
    for index in pending:
        answers[index].text, answers[index].fell_back = TASKS[requests[index][0]].fallback, True
    return answers
