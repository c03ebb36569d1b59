"""Guarded inference for the four tasks: stop at the end marker, validate, retry, fall back (docs/fine_tuning.md).

Usage::

    llms = TaskModels.load(get_profile())                       # one base model per architecture
    answers = answer_batch(llms, "output_message", prompts, weekday="토요일", seed=0)
    answers[0].text, answers[0].tries, answers[0].fell_back

One base model per architecture holds all its task adapters side by side (PEFT named adapters) and
switches per call — not one model copy per task, as the original did. The one exception is the reply,
which the user waits for: ``TaskModels.load(..., merged=("output_message",))`` also keeps a private copy of
the base with the reply adapter merged into its weights (:class:`MergedTaskModel`), and a single reply row
is decoded there by a short sampling loop instead of ``generate`` over the adapters; the chat gives every
task such a copy (int8 on a CPU), and the few rows of a turn then run one after another on their copies. Generation samples at the task's
temperature and stops at its end marker. An answer is retried (temperature +0.1 each time, at most five
tries) when it is empty, never reached its end marker, contains another marker or ``http``, names the
wrong weekday (replies), or is not a well-formed expression; after that the original's fallback is used:
``(읽씹)`` for a reply, nothing for a summary or memory, ``(눈 보통, 입 보통, 고개 돌림 없음)`` for the face.
Memory answers are normalised to exactly one ``[key: value]`` (or none). Whether there is a memory at all
is decided before sampling (``empty_gate``): the adapter's probability of answering "nothing to remember"
against ``TaskSpec.empty_gate``; where it says remember, the answer is sampled from its opening ``[``.
``answer_requests(..., choose_keys=True)`` also forces the likeliest of the data's keys after it (scored as
whole keys, ``TaskModels.option_log_likelihoods``), so that only the value is sampled: tried, not the chat's
default (``benchmarks/memory_gate.py --keys``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .decoding import DEFAULT_DECODING, Decoding, RowDecoding, candidates
from .devices import compute_device
from .errors import OhloraError
from .adapters import adapter_dir, read_adapter_meta
from .formats import MEMORY_ITEM, format_memory_item, parse_expression
from .models import load_causal_lm
from .profiles import Profile
from .tasks import TASK_NAMES, TASKS, all_markers
from .timeinfo import wrong_weekday_mentions

MAX_TRIES = 5               # the original's limit before falling back
STOP_LOOKBACK = 24          # tokens decoded per step to look for the end marker
RETRY_TEMPERATURE_STEP = 0.1
GENERATION_BATCH = 16       # prompts generated together
# the torch operator behind weight-only int8 linears (a CPU kernel in the pinned torch); without it, no int8
INT8_MATMUL = getattr(torch, "_weight_int8pack_mm", None)


# ATen builds that operator's CPU kernel vectorised for AVX-512 only: on an AVX2-only CPU it runs scalar, 22×
# slower than the fp32 matmul it would replace (1×640 by 640×2048, torch 2.13, AMD EPYC without AVX-512)
INT8_FAST_CAPABILITY = "AVX512"


def int8_merged_available(cpu_capability: str | None = None) -> bool:
    """Merged copies may hold int8 weights (``Int8Linear``): torch has the kernel, the work runs on the CPU, and
    the CPU runs the kernel vectorised (``torch.backends.cpu.get_cpu_capability()``, or ``cpu_capability``)."""
    capability = cpu_capability or torch.backends.cpu.get_cpu_capability()
    return INT8_MATMUL is not None and compute_device() == "cpu" and capability.startswith(INT8_FAST_CAPABILITY)


class EndMarkerStop:
    """Stopping criterion: a row is done once its generated text contains the end marker.

    It decodes only the last few tokens of each row per step, so it costs microseconds and is built
    without scanning the vocabulary (``generate(stop_strings=...)`` rebuilds a 262k-token table on
    every call for Gemma, about 2 s).
    """

    def __init__(self, tokenizer, markers: str | list[str], prompt_length: int, lookback: int = STOP_LOOKBACK):
        self.tokenizer, self.markers, self.prompt_length, self.lookback = tokenizer, markers, prompt_length, lookback

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        start = max(self.prompt_length, input_ids.shape[1] - self.lookback)
        tails = self.tokenizer.batch_decode(input_ids[:, start:], skip_special_tokens=True)
        markers = [self.markers] * len(tails) if isinstance(self.markers, str) else self.markers
        return torch.tensor([marker in tail for marker, tail in zip(markers, tails)], device=input_ids.device)


@dataclass
class Generation:
    text: str       # the completion up to (not including) the end marker, stripped
    ended: bool     # whether the end marker was reached
    tokens: int = 0  # tokens sampled for it (the decode-speed benchmark counts them)


@dataclass
class Answer:
    task: str
    text: str | None                 # the final, validated (and normalised) answer; None = no answer
    tries: int
    seconds: float
    fell_back: bool
    attempts: list[str] = field(default_factory=list)   # raw text of every try
    problems: list[str] = field(default_factory=list)   # why each rejected try was rejected


class Int8Linear(torch.nn.Module):
    """A frozen linear layer held as int8 weights with one scale per output row (weight-only quantisation).

    Why: decoding one row reads every weight once per token, and on this CPU that read, not arithmetic,
    bounds the step; int8 halves the bytes of bf16. Activations and outputs stay in the model's dtype.
    Built from the fp32 weights, so each weight is rounded once.
    """

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight_int8", torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale)
        self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).contiguous()
        out = INT8_MATMUL(flat, self.weight_int8, self.scale.to(x.dtype))
        if self.bias is not None:
            out = out + self.bias.to(out.dtype)
        return out.reshape(*x.shape[:-1], self.out_features)


def quantise_linears_int8(module: torch.nn.Module) -> int:
    """Replace every ``nn.Linear`` inside ``module`` by an :class:`Int8Linear`; returns how many."""
    if INT8_MATMUL is None:
        raise OhloraError("this torch has no weight-only int8 matmul (torch._weight_int8pack_mm)",
                          fix="load the merged copy without int8 (weights='bf16') or install the pinned torch")
    swapped = 0
    for name, child in list(module.named_children()):
        if isinstance(child, torch.nn.Linear):
            setattr(module, name, Int8Linear(child))
            swapped += 1
        else:
            swapped += quantise_linears_int8(child)
    return swapped


def share_input_embeddings(models: list) -> int:
    """Let copies of one base whose input embeddings are equal share the first one's table (LoRA never
    touches it; for gemma-3-270m it is 335 MB in bf16 per copy). Returns how many copies now share it."""
    if len(models) < 2:
        return 0
    first, shared = models[0].get_input_embeddings(), 0
    for model in models[1:]:
        own = model.get_input_embeddings()
        if own.weight.shape == first.weight.shape and torch.equal(own.weight, first.weight):
            model.set_input_embeddings(first)
            shared += 1
    return shared


class MergedTaskModel:
    """One task's adapter merged into a private copy of its base model, decoded one row at a time.

    Why: a reply row through ``generate`` on the shared base pays, at every token, for the PEFT layers
    (two extra small matmuls and their bookkeeping in each of 126 adapted linears) and for transformers'
    generic sampling machinery over a full-size logits row. Here the merge is done once, in fp32 (so the
    small LoRA delta is added before the weights are rounded to ``dtype``), and the loop is the plain
    one: backbone step with a KV cache, output rows of the study vocabulary, the decoding filters
    (``decoding.candidates``), one multinomial draw, and a stop check that decodes only the last few tokens.
    It samples from the same distribution as ``generate`` with the same adapter and decoding, not the same
    draws. Costs the memory of one more copy of the base (about 0.5 GB in bf16 for
    gemma-3-270m). ``benchmarks/turn_latency.py`` measures the tokens per second of both paths.
    """

    def __init__(self, task: str, causal_lm, tokenizer):
        from .vocabulary import RestrictedOutputLayer

        self.task, self.model, self.tokenizer = task, causal_lm.eval(), tokenizer
        head = causal_lm.get_output_embeddings()
        self.output_weight = head.weight
        self.output_bias = getattr(head, "bias", None)
        self.token_ids = head.keep if isinstance(head, RestrictedOutputLayer) else None   # row → token id
        self.softcap = getattr(causal_lm.config, "final_logit_softcapping", None)
        eos = causal_lm.generation_config.eos_token_id
        self.stop_ids = {int(i) for i in (eos if isinstance(eos, (list, tuple)) else [eos]) if i is not None}

    @classmethod
    def merge(cls, task: str, source, adapter: Path, dtype=None, vocabulary: torch.LongTensor | None = None,
              device: str | None = None, int8: bool = False, fp32_base=None) -> "MergedTaskModel":
        """``vocabulary``: token ids to keep in the output layer (``vocabulary.study_token_ids``), or all;
        ``int8``: the backbone's linear layers as weight-only int8 (:class:`Int8Linear`), the rest in ``dtype``;
        ``fp32_base``: ``(model, tokenizer)`` of ``source`` already loaded in fp32, merged into a copy of it
        (several tasks of one base read it from disk once)."""
        import copy

        from peft import PeftModel

        from .vocabulary import restrict_output_layer

        if fp32_base is None:
            base, tokenizer = load_causal_lm(source)   # fp32 for the merge itself
        else:
            base, tokenizer = copy.deepcopy(fp32_base[0]), fp32_base[1]
        try:
            merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
        except Exception as cause:  # a damaged adapter file surfaces as any of several library errors
            raise OhloraError(f"the {task} adapter in {adapter} could not be merged ({type(cause).__name__}: {cause})",
                              fix="delete the folder and train it again (notebook 02, or make reproduce)") from None
        if int8:
            quantise_linears_int8(merged.get_decoder())
        merged.to(device=device or compute_device(), dtype=dtype or torch.float32)
        if vocabulary is not None:
            restrict_output_layer(merged, vocabulary)
        return cls(task, merged, tokenizer)

    def generate(self, prompt: str, temperature: float, seed: int | None = None,
                 max_new_tokens: int | None = None, decoding: Decoding = DEFAULT_DECODING) -> Generation:
        """Sample one completion of ``prompt`` at ``temperature`` with ``decoding``, stopping at the task's end marker."""
        from transformers import DynamicCache

        marker = TASKS[self.task].end_marker
        if seed is not None:
            torch.manual_seed(seed)
        step = self.tokenizer(prompt, return_tensors="pt")["input_ids"].to(self.model.device)
        decoder, cache, tokens, rows = self.model.get_decoder(), DynamicCache(config=self.model.config), [], []
        with torch.inference_mode():
            for _ in range(max_new_tokens or TASKS[self.task].max_new_tokens):
                hidden = decoder(input_ids=step, past_key_values=cache, use_cache=True).last_hidden_state[:, -1]
                logits = torch.nn.functional.linear(hidden, self.output_weight, self.output_bias).float()
                if self.softcap:
                    logits = torch.tanh(logits / self.softcap) * self.softcap
                previous = (torch.tensor(rows, dtype=torch.long, device=logits.device)
                            if decoding.repetition_penalty != 1.0 else None)   # only the penalty reads them
                values, columns = candidates(logits[0], temperature, decoding, previous)
                row = int(columns[torch.multinomial(torch.softmax(values, -1), 1)])
                rows.append(row)
                token = int(self.token_ids[row] if self.token_ids is not None else row)
                if token in self.stop_ids:
                    break
                tokens.append(token)
                if marker in self.tokenizer.decode(tokens[-STOP_LOOKBACK:], skip_special_tokens=True):
                    break
                step = torch.tensor([[token]], device=step.device)
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return Generation(text.split(marker)[0].strip(), marker in text, len(tokens))


class TaskModels:
    """The profile's base models, each with the adapters of the tasks it serves."""

    def __init__(self, profile: Profile, models: dict, tokenizers: dict, merged: dict | None = None,
                 adapter_stamps: dict | None = None):
        self.profile, self.models, self.tokenizers = profile, models, tokenizers
        self.merged: dict[str, MergedTaskModel] = merged or {}   # task → its merged copy (single rows go there)
        self.adapter_stamps: dict[str, str | None] = adapter_stamps or {}   # task → its adapter's provenance hash
        # how each task draws its tokens (the task's own; the decoding study sets others here)
        self.decodings: dict[str, Decoding] = {task: spec.decoding for task, spec in TASKS.items()}

    @classmethod
    def load(cls, profile: Profile, tasks=TASK_NAMES, adapters: dict[str, Path] | None = None, dtype=None,
             restrict_vocabulary: bool = False, merged: tuple[str, ...] = (), merged_int8: bool = False):
        """Each base model once, with its tasks' adapters; ``dtype`` (default fp32) for the base weights;
        ``restrict_vocabulary`` samples from the study's vocabulary only (``vocabulary.py``: faster);
        ``merged`` names tasks that also get a :class:`MergedTaskModel` for their single-row answers;
        ``merged_int8`` holds the merged copies' backbone weights as weight-only int8 (:class:`Int8Linear`):
        one row decodes faster (half the bytes of bf16 per token). Not the shared base: its batches spend
        their time in PEFT's per-adapter work, and measured, int8 made them slower."""
        from peft import PeftModel

        from .vocabulary import restrict_output_layer, study_token_ids

        adapters = adapters or {task: adapter_dir(profile, task) for task in tasks}
        device = compute_device()
        models, tokenizers, vocabularies, stamps = {}, {}, {}, {}
        for source in profile.llm_sources():
            served = [task for task in profile.tasks_of(source) if task in adapters]
            if not served:
                continue
            for task in served:
                meta = read_adapter_meta(adapters[task])
                stamps[task] = (meta.get("provenance") or {}).get("sha256")
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
            vocabulary = study_token_ids(tokenizer) if restrict_vocabulary else None
            if vocabulary is not None:
                restrict_output_layer(model.get_base_model(), vocabulary)
            for task in served:
                models[task], tokenizers[task], vocabularies[task] = model, tokenizer, vocabulary
        unknown = sorted(set(merged) - set(models))
        if unknown:
            raise OhloraError(f"cannot merge task(s) {', '.join(unknown)}: no adapter loaded for them",
                              fix=f"loaded: {', '.join(models) or 'none'}")
        copies = {}
        for source in profile.llm_sources():
            tasks_here = [task for task in merged if profile.llm_for(task).key == source.key]
            if not tasks_here:
                continue
            fp32_base = load_causal_lm(source) if len(tasks_here) > 1 else None
            for task in tasks_here:
                copies[task] = MergedTaskModel.merge(task, source, adapters[task], dtype, vocabularies[task], device,
                                                     int8=merged_int8, fp32_base=fp32_base)
            share_input_embeddings([copies[task].model for task in tasks_here])
        return cls(profile, models, tokenizers, copies, stamps)

    @property
    def tasks(self) -> list[str]:
        return list(self.models)

    def signature(self, task: str) -> dict:
        """What decides ``task``'s outputs besides the prompt and the seed: its adapter's provenance hash, the
        base weights' dtype, the output rows (the study vocabulary or all) and whether a merged copy answers."""
        model = self.merged[task].model if task in self.merged else self.models[task]
        output = model.get_output_embeddings()
        return {"profile": self.profile.name, "adapter": self.adapter_stamps.get(task),
                "dtype": str(next(model.parameters()).dtype), "merged": task in self.merged,
                "output_rows": int(output.weight.shape[0]) if output is not None else None}

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

    def _scorer(self, task: str):
        """``task``'s model (its adapter active), tokenizer and decoder, and ``token_log_probs(states, targets)``:
        the log-probability of each target token from the decoder state before it, under the output layer the
        chat samples from (gemma's final logit soft-capping included). What both likelihood scores share."""
        if task not in self.models:
            raise OhloraError(f"no adapter loaded for task {task!r}", fix=f"loaded: {', '.join(self.models) or 'none'}")
        model = self.models[task]
        model.set_adapter(task)
        causal_lm = model.get_base_model()
        head = causal_lm.get_output_embeddings()
        softcap = getattr(causal_lm.config, "final_logit_softcapping", None)

        def token_log_probs(states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            logits = head(states).float()
            if softcap:
                logits = torch.tanh(logits / softcap) * softcap
            return logits.log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)

        return model, self.tokenizers[task], causal_lm.get_decoder(), token_log_probs

    def completion_log_likelihood(self, task: str, prompts: list[str], completions: list[str],
                                  batch_size: int = 8, total: bool = False) -> list[float]:
        """Mean log-probability per token of each completion after its prompt, under ``task``'s adapter and
        the output layer the chat samples from: the score of response selection (llm_metrics) and of
        reranking candidates. ``completions`` are task completions as trained (``TaskSpec.completion``).
        ``total``: the sum over the completion's tokens instead (the log-probability of the whole completion)."""
        model, tokenizer, decoder, token_log_probs = self._scorer(task)
        if len(prompts) != len(completions):
            raise OhloraError(f"{len(prompts)} prompts but {len(completions)} completions",
                              fix="pass one completion per prompt")
        scores = []
        for start in range(0, len(prompts), batch_size):
            pairs = [(tokenizer(p)["input_ids"], tokenizer(c, add_special_tokens=False)["input_ids"])
                     for p, c in zip(prompts[start:start + batch_size], completions[start:start + batch_size])]
            width = max(len(p) + len(c) for p, c in pairs)
            ids = torch.full((len(pairs), width), tokenizer.pad_token_id)
            mask, labels = torch.zeros_like(ids), torch.full_like(ids, -100)
            for row, (p, c) in enumerate(pairs):   # right padding: positions start at 0 in every row
                ids[row, :len(p) + len(c)] = torch.tensor(p + c)
                mask[row, :len(p) + len(c)] = 1
                labels[row, len(p):len(p) + len(c)] = torch.tensor(c)
            with torch.inference_mode():
                hidden = decoder(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                                 use_cache=False).last_hidden_state
                targets = labels[:, 1:].to(model.device)
                keep = targets != -100
                token_scores = token_log_probs(hidden[:, :-1][keep], targets[keep])
                row_of = keep.nonzero()[:, 0]
                sums = torch.zeros(len(pairs), device=token_scores.device).index_add_(0, row_of, token_scores)
                counts = keep.sum(dim=1).clamp(min=1)
            scores += (sums if total else sums / counts).tolist()
        return scores

    def option_log_likelihoods(self, task: str, prompt: str, options: list[str]) -> list[float]:
        """Log-probability of each of ``options`` as a whole (summed over its tokens) right after ``prompt``
        under ``task``'s adapter: ``completion_log_likelihood(..., total=True)`` of every option, but the prompt
        runs once and its cache serves all options, so two dozen short options cost about one pass over the
        prompt (the memory key's choice in a chat turn)."""
        model, tokenizer, decoder, token_log_probs = self._scorer(task)
        tails = [tokenizer(option, add_special_tokens=False)["input_ids"] for option in options]
        if not all(tails):
            raise OhloraError("an option to score is empty", fix="pass options of at least one token")
        if not options:
            return []
        prompt_ids = tokenizer(prompt)["input_ids"]
        lengths = torch.tensor([len(tail) for tail in tails])
        ids = torch.full((len(tails), int(lengths.max())), tokenizer.pad_token_id)
        for row, tail in enumerate(tails):   # right padding: a pad comes after every real token of its row
            ids[row, :len(tail)] = torch.tensor(tail)
        real = torch.arange(ids.shape[1])[None, :] < lengths[:, None]   # the options' own tokens, not the pads
        with torch.inference_mode():
            first = decoder(input_ids=torch.tensor([prompt_ids], device=model.device), use_cache=True)
            cache = first.past_key_values
            cache.batch_repeat_interleave(len(tails))
            mask = torch.ones(len(tails), len(prompt_ids) + ids.shape[1], dtype=torch.long)
            mask[:, len(prompt_ids):] = real.long()
            rest = decoder(input_ids=ids.to(model.device), attention_mask=mask.to(model.device), past_key_values=cache,
                           use_cache=True).last_hidden_state
            # the prompt's last state predicts each option's first token; an option's own states the rest
            states = torch.cat([first.last_hidden_state[:, -1:].expand(len(tails), 1, -1), rest[:, :-1]], dim=1)
            token_scores = token_log_probs(states, ids.to(model.device))
        return (token_scores * real.to(token_scores.device)).sum(dim=1).tolist()

    def empty_answer_probability(self, task: str, prompts: list[str]) -> list[float]:
        """Probability that ``task``'s adapter answers nothing after each prompt (its end marker at once):
        what ``TaskSpec.empty_gate`` compares, e.g. the memory task's "nothing to remember"."""
        empty = TASKS[task].completion({task: ""})
        return torch.tensor(self.completion_log_likelihood(task, prompts, [empty] * len(prompts), total=True)).exp().tolist()

    def _generate_rows(self, rows, seed, max_new_tokens) -> list[Generation]:
        tasks = [task for task, _, _ in rows]
        if all(task in self.merged for task in tasks):
            # every row's task has its merged copy: one row after another on its copy's short loop beats one
            # batch over the shared base for the few rows of a chat turn (benchmarks/turn_latency.py)
            return [self.merged[task].generate(prompt, temperature, None if seed is None else seed + index,
                                               max_new_tokens, self.decodings.get(task, DEFAULT_DECODING))
                    for index, (task, prompt, temperature) in enumerate(rows)]
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
                **encoded, **adapter_kwargs, do_sample=True, temperature=1.0, top_k=0,   # RowDecoding does it all
                logits_processor=[RowDecoding(temperatures, [self.decodings.get(t, DEFAULT_DECODING) for t in tasks],
                                              length)],
                max_new_tokens=max_new_tokens or max(TASKS[task].max_new_tokens for task in tasks),
                pad_token_id=tokenizer.pad_token_id, stopping_criteria=[EndMarkerStop(tokenizer, markers, length)],
            )
        new_tokens = output[:, length:]
        counts = (new_tokens != tokenizer.pad_token_id).sum(dim=1).tolist()   # rows that stopped early are padded
        generations = []
        for marker, text, count in zip(markers, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), counts):
            generations.append(Generation(text.split(marker)[0].strip(), marker in text, int(count)))
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


def empty_gate(models: TaskModels, requests: list[tuple[str, str, str | None]], answers: list[Answer],
               gates: dict[str, float | None] | None = None,
               choose_keys: bool = False) -> tuple[list[int], list[str], list[str]]:
    """For rows of a task with an ``empty_gate``: the empty answer where the adapter finds it at least that
    likely (set in ``answers``, nothing generated), else the prompt extended by the task's ``opening``, so that
    the answer sampled cannot be empty. Returns the rows still to generate, every row's prompt and the opening
    forced on it (to put back in front of what is generated). ``gates``: a gate per task other than the task's
    own (None: no gate, the empty answer is sampled like any other; ``inf``: always the opening).
    ``choose_keys``: the opening of a task with ``TaskSpec.keys`` ends with the likeliest of them
    (``likeliest_opening``); the default leaves the key to be sampled like any other token (the chat's way: the
    choice was tried and not adopted: ``benchmarks/memory_gate.py --keys``, docs/fine_tuning.md)."""
    prompts, openings = [prompt for _, prompt, _ in requests], [""] * len(requests)
    decided: set[int] = set()   # rows answered "nothing" by the gate
    for task in dict.fromkeys(task for task, _, _ in requests):
        spec = TASKS[task]
        gate = (gates or {}).get(task, spec.empty_gate)
        if gate is None:
            continue
        rows = [i for i, (row_task, _, _) in enumerate(requests) if row_task == task]
        started = time.perf_counter()
        probabilities = models.empty_answer_probability(task, [prompts[i] for i in rows])
        share = (time.perf_counter() - started) / len(rows)
        for index, probability in zip(rows, probabilities):
            answers[index].seconds += share
            if probability >= gate:
                answers[index].tries, answers[index].attempts = 1, [""]
                decided.add(index)
            else:
                if spec.keys and choose_keys:
                    started = time.perf_counter()
                    openings[index] = likeliest_opening(models, task, prompts[index])
                    answers[index].seconds += time.perf_counter() - started
                else:
                    openings[index] = spec.opening
                prompts[index] += f" {openings[index]}"
    pending = [index for index in range(len(requests)) if index not in decided]
    return pending, prompts, openings


def likeliest_opening(models: TaskModels, task: str, prompt: str) -> str:
    """The task's opening followed by the likeliest of its ``keys`` (``TaskModels.option_log_likelihoods``),
    e.g. ``[직업:`` for the memory task: the key is the most probable whole key instead of one drawn token by
    token, and always one the data uses."""
    spec = TASKS[task]
    scores = models.option_log_likelihoods(task, prompt, [f" {spec.opening}{key}:" for key in spec.keys])
    return f"{spec.opening}{spec.keys[max(range(len(scores)), key=scores.__getitem__)]}:"


def after_opening(opening: str, text: str) -> str:
    """An answer generated after ``opening``, written out in full. The prompt ends at a key's colon (a tokenizer
    joins a space to the word after it), while an item has a space there (formats.MEMORY_ITEM)."""
    return f"{opening} {text}" if opening.endswith(":") else opening + text


def answer_requests(models: TaskModels, requests: list[tuple[str, str, str | None]], seed: int = 0,
                    max_tries: int = MAX_TRIES, temperatures: dict[str, float] | None = None,
                    empty_gates: dict[str, float | None] | None = None, choose_keys: bool = False) -> list[Answer]:
    """Guarded answers for ``(task, prompt, weekday)`` rows, tasks mixed: each row is retried at its
    temperature + 0.1 per retry until valid or ``max_tries``, then gets its task's fallback.
    ``temperatures``: a first-try temperature per task other than the task's own (the decoding study);
    ``empty_gates``: the same for ``TaskSpec.empty_gate`` (``empty_gate``; the memory gate's study);
    ``choose_keys=True``: a memory's key chosen as the likeliest of the data's, not sampled (``empty_gate``)."""
    first_temperature = {task: spec.temperature for task, spec in TASKS.items()} | (temperatures or {})
    answers = [Answer(task, None, 0, 0.0, False) for task, _, _ in requests]
    pending, prompts, openings = empty_gate(models, requests, answers, empty_gates, choose_keys)
    for attempt in range(max_tries):
        if not pending:
            break
        started = time.perf_counter()
        batch = [(requests[i][0], prompts[i], first_temperature[requests[i][0]] + RETRY_TEMPERATURE_STEP * attempt)
                 for i in pending]
        generations = models.generate_mixed(batch, seed=seed + 7919 * attempt)
        share = (time.perf_counter() - started) / len(pending)  # batch time split evenly among its rows
        still_pending = []
        for index, generation in zip(pending, generations):
            task, _, weekday = requests[index]
            answer = answers[index]
            generation = Generation(after_opening(openings[index], generation.text), generation.ended, generation.tokens)
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
