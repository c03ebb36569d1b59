"""Metrics of the four fine-tuned tasks on the valid split (the original never scored its tasks).

Usage: ``rows, table = evaluate_tasks(llms, valid, train, seed=0)`` → per-answer rows + one metric table

Per task: tries and seconds per answer, fallback rate. Then
- output_message: share starting with a digit or list marker (the original's main defect), wrong-weekday
  rate (rows with time info), share repeating a training reply word for word, mean length, and how often it
  refuses (미안/부담) where the gold reply refuses (love, politics) and where it does not (look-alikes, the rest);
- summary: non-empty rate, character overlap with the gold summary (F1 over characters, spaces ignored);
- memory: format-valid rate (no memory, or exactly one ``[key: value]``), exact match with the gold
  memory ("no memory" included), and extraction as retrieval: precision (a saved memory was due), recall (a
  due memory was saved), key accuracy and value overlap where both hold one;
- eyes_mouth_pose: parse rate of the first try (original 323/360 = 89.7 %), per-part label accuracy, and
  the accuracy of always answering the train split's most frequent label (the baseline to beat).

``response_selection`` ranks each valid row's gold reply against other valid rows' replies by the reply
adapter's likelihood: a sampling-free measure of whether the adapter prefers the right answer.
"""
from __future__ import annotations

import re
from collections import Counter

import pandas as pd

from .data import is_refusal
from .evaluation_cache import cached_frame
from .formats import MEMORY_ITEM, parse_expression, parse_memory_item, split_context
from .generation import TaskModels, answer_batch, answer_requests
from .provenance import content_sha256
from .tasks import TASKS
from .timeinfo import wrong_weekday_mentions

# valid rows scored per preset (None: all); 128 keeps notebook 02's evaluation within make reproduce's budget
EVAL_ROWS = {"quick": 4, "default": 128, "paper": None}
EVAL_SAMPLE_SEED = 0       # which valid rows a limited evaluation scores (a fixed sample over the whole split)
SELECTION_CANDIDATES = 10  # response selection: the gold reply and 9 other valid replies
GATE_GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)   # memory gates the study sweeps (TaskSpec.empty_gate)
METRICS_CSV, ANSWERS_CSV = "valid_metrics.csv", "valid_answers.csv"
LIST_START = re.compile(r"^\s*(\d|[-*•·]|[①-⑳])")   # "1.", "- ", "* ", "•": the original's defect


def character_f1(predicted: str, gold: str) -> float:
    """F1 over the multisets of non-space characters (a crude but Korean-friendly overlap)."""
    p, g = Counter(predicted.replace(" ", "")), Counter(gold.replace(" ", ""))
    common = sum((p & g).values())
    if not p or not g or not common:
        return 0.0
    precision, recall = common / sum(p.values()), common / sum(g.values())
    return 2 * precision * recall / (precision + recall)


def rate(flags) -> float:
    """Share of true values; NaN when there is nothing to count (e.g. every answer fell back)."""
    flags = [bool(flag) for flag in flags]
    return sum(flags) / len(flags) if flags else float("nan")


def evaluation_rows(frame: pd.DataFrame, preset: str, limit: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(valid rows to score, train rows)``: ``limit`` valid rows (0: the preset's number, else all), a fixed
    sample spread over the whole split, in file order."""
    valid = frame[frame["data_type"] == "valid"]
    count = min(limit or EVAL_ROWS.get(preset) or len(valid), len(valid))
    if count < len(valid):
        valid = valid.sample(count, random_state=EVAL_SAMPLE_SEED).sort_index()
    return valid, frame[frame["data_type"] == "train"]


def prompt_token_table(profile, row: dict) -> pd.DataFrame:
    """Per task: prompt and completion length in tokens of its base model, and how it spells the end marker."""
    from .models import load_tokenizer

    rows = []
    for source in profile.llm_sources():
        tokenizer = load_tokenizer(source)
        for task in profile.tasks_of(source):
            spec = TASKS[task]
            rows.append({"task": task, "base model": source.key,
                         "prompt tokens": len(tokenizer(spec.prompt(row))["input_ids"]),
                         "completion tokens": len(tokenizer(spec.completion(row))["input_ids"]),
                         "end marker pieces": " | ".join(tokenizer.tokenize(spec.end_marker))})
    return pd.DataFrame(rows)


def task_inputs(task: str, frame: pd.DataFrame) -> list[str]:
    """The prompts of ``task`` for ``frame``; summary and expression read the gold reply, as in training."""
    return [TASKS[task].prompt(row) for row in frame.to_dict("records")]


def evaluate_tasks(llms: TaskModels, valid: pd.DataFrame, train: pd.DataFrame, seed: int = 0,
                   tasks=None, cache: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate every task's guarded answer for every valid row; return (per-answer rows, metric table).

    ``cache``: reuse a task's answers generated before by the same adapter, rows, seed, model loading and
    code (``evaluation_cache``); the table's ``answers_reused`` column says which were."""
    weekdays = [(parts.time_info.split()[1] if parts.time_info else None)
                for parts in map(split_context, valid["input_data"])]
    rows, table = [], []
    for task in tasks or llms.tasks:
        prompts, gold = task_inputs(task, valid), valid[task].fillna("").tolist()

        def generate() -> pd.DataFrame:
            answers = answer_batch(llms, task, prompts, weekday=weekdays, seed=seed)
            return pd.DataFrame([{"task": task, "line": line, "gold": gold_text, "answer": answer.text or "",
                                  "first_try": answer.attempts[0] if answer.attempts else "", "tries": answer.tries,
                                  "seconds": answer.seconds, "fell_back": answer.fell_back, "weekday": weekday}
                                 for answer, gold_text, weekday, line in zip(answers, gold, weekdays, valid.index)])

        if cache:
            inputs = {"task": task, "models": llms.signature(task), "seed": seed,
                      "rows": content_sha256([prompts, gold, weekdays, [str(i) for i in valid.index]])}
            frame, reused = cached_frame(task, inputs, generate)
        else:
            frame, reused = generate(), False
        rows += frame.to_dict("records")
        metrics = {"task": task, "answers": len(frame), "tries_per_answer": frame["tries"].mean(),
                   "seconds_per_answer": frame["seconds"].mean(), "fallback_rate": frame["fell_back"].mean()}
        metrics.update(METRICS[task](frame, train))
        metrics["answers_reused"] = reused
        table.append(metrics)
    return pd.DataFrame(rows), pd.DataFrame(table).set_index("task")


def _reply_metrics(frame: pd.DataFrame, train: pd.DataFrame) -> dict:
    train_replies = set(train["output_message"].str.strip())
    answered = frame[~frame["fell_back"]]
    replies = answered["answer"].tolist()
    timed = frame[frame["weekday"].notna()]
    gold_refuses = answered["gold"].map(is_refusal)
    return {
        "starts_with_digit_or_list": rate(LIST_START.match(reply) for reply in replies),
        "wrong_weekday_first_try": rate(wrong_weekday_mentions(r.first_try, r.weekday) for r in timed.itertuples()),
        "repeats_training_reply": rate(reply.strip() in train_replies for reply in replies),
        "mean_reply_chars": sum(map(len, replies)) / len(replies) if replies else float("nan"),
        "refuses_where_gold_refuses": rate(map(is_refusal, answered.loc[gold_refuses, "answer"])),
        "refuses_where_gold_does_not": rate(map(is_refusal, answered.loc[~gold_refuses, "answer"])),
    }


def _summary_metrics(frame: pd.DataFrame, _) -> dict:
    overlaps = [character_f1(a, g) for a, g in zip(frame["answer"], frame["gold"])]
    return {"non_empty": rate(answer.strip() for answer in frame["answer"]),
            "char_f1_with_gold": sum(overlaps) / len(overlaps) if overlaps else float("nan")}


def _memory_format_valid(text: str) -> bool:
    return text.strip() == "" or MEMORY_ITEM.fullmatch(text.strip()) is not None


def _memory_metrics(frame: pd.DataFrame, _) -> dict:
    pairs = [(answer.strip(), gold.strip()) for answer, gold in zip(frame["answer"], frame["gold"])]
    items = [(parse_memory_item(a) if a else None, parse_memory_item(g) if g else None) for a, g in pairs]
    both = [(a, g) for a, g in items if a and g]
    return {"format_valid_first_try": rate(map(_memory_format_valid, frame["first_try"])),
            "exact_match": rate(a == g for a, g in pairs),
            "exact_match_when_gold_has_memory": rate(a == g for a, g in pairs if g),
            "exact_match_when_gold_is_none": rate(a == g for a, g in pairs if not g),
            "saved_precision": rate(g is not None for a, g in items if a),
            "saved_recall": rate(a is not None for a, g in items if g),
            "key_accuracy_when_both_saved": rate(a[0] == g[0] for a, g in both),
            "value_char_f1_when_both_saved": (sum(character_f1(a[1], g[1]) for a, g in both) / len(both)
                                              if both else float("nan"))}


def memory_gate_sweep(llms: TaskModels, valid: pd.DataFrame, grid=GATE_GRID, seed: int = 0,
                      cache: bool = False) -> pd.DataFrame:
    """The memory task's extraction on ``valid`` with the save-or-not decision sampled (the original: no gate)
    and at each gate of ``grid`` (``TaskSpec.empty_gate``): memories saved, precision, recall, key accuracy
    and value overlap. One forced answer per row (sampled after the opening ``[``) serves every gate, so a gate
    here saves the same memory as the chat would, up to the sampling draw. ``cache``: reuse the table computed
    before from the same adapter, rows, grid, seed and code (``evaluation_cache``)."""
    prompts, gold = task_inputs("memory", valid), valid["memory"].fillna("").tolist()
    if cache:
        inputs = {"models": llms.signature("memory"), "seed": seed, "grid": list(grid),
                  "rows": content_sha256([prompts, gold])}
        return cached_frame("memory_gate", inputs, lambda: memory_gate_sweep(llms, valid, grid, seed))[0]
    requests = [("memory", prompt, None) for prompt in prompts]
    empty = llms.empty_answer_probability("memory", prompts)
    sampled = answer_requests(llms, requests, seed, empty_gates={"memory": None})
    forced = answer_requests(llms, requests, seed, empty_gates={"memory": float("inf")})

    def scored(decision: str, gate: float, texts: list[str | None]) -> dict:
        frame = pd.DataFrame({"answer": [text or "" for text in texts], "gold": gold, "first_try": [""] * len(gold)})
        metrics = _memory_metrics(frame, None)
        return {"decision": decision, "gate": gate, "saved": sum(bool(text) for text in texts),
                "due": sum(bool(g.strip()) for g in gold)} | {
            column: metrics[column] for column in ("saved_precision", "saved_recall", "key_accuracy_when_both_saved",
                                                   "value_char_f1_when_both_saved")}

    rows = [scored("sampled (the original)", float("nan"), [answer.text for answer in sampled])]
    rows += [scored("gate", gate, [answer.text if p < gate else None for answer, p in zip(forced, empty)])
             for gate in grid]
    return pd.DataFrame(rows)


def memory_key_comparison(llms: TaskModels, valid: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The memory's key drawn after ``[`` (the chat) against the likeliest of the data's keys
    (``answer_requests(choose_keys=True)``), on the rows of ``valid`` due a memory, the save gate held open so
    both ways write one item a row; same seed. Returns (table: right key, keys outside ``MEMORY_KEYS``, rows
    with no item, the value's character F1 against the gold value where an item was written, seconds a row;
    every row's two answers)."""
    import time

    from .tasks import MEMORY_KEYS

    due = valid[valid["memory"].fillna("").str.strip().ne("")]
    gold = [parse_memory_item(item) for item in due["memory"]]
    requests = [("memory", prompt, None) for prompt in task_inputs("memory", due)]
    rows, answers = [], {}
    for name, choose in (("key drawn (the chat)", False), ("likeliest key (choose_keys)", True)):
        started = time.perf_counter()
        texts = [answer.text for answer in answer_requests(llms, requests, seed, empty_gates={"memory": float("inf")},
                                                           choose_keys=choose)]
        seconds = time.perf_counter() - started
        written = [(parse_memory_item(text), truth) for text, truth in zip(texts, gold) if text]
        rows.append({"key": name, "rows": len(gold), "right key": sum(item[0] == truth[0] for item, truth in written),
                     "outside the keys": sum(item[0] not in MEMORY_KEYS for item, _ in written),
                     "no item": len(gold) - len(written),
                     "value char-F1": (sum(character_f1(item[1], truth[1]) for item, truth in written) / len(written)
                                       if written else float("nan")),
                     "s / row": seconds / max(len(gold), 1)})
        answers[name] = texts
    return pd.DataFrame(rows), pd.DataFrame({"input_data": due["input_data"].tolist(), "gold": due["memory"].tolist(),
                                             **answers})


def _expression_metrics(frame: pd.DataFrame, train: pd.DataFrame) -> dict:
    parsed = [parse_expression(text) for text in frame["answer"]]
    gold = [parse_expression(text) for text in frame["gold"]]
    metrics = {"parse_rate_first_try": rate(parse_expression(text) is not None for text in frame["first_try"])}
    for index, part in enumerate(("eyes", "mouth", "pose")):
        metrics[f"{part}_accuracy"] = rate(p is not None and g is not None and p[index] == g[index]
                                           for p, g in zip(parsed, gold))
        majority = train[part].mode().iloc[0] if len(train) else None
        metrics[f"{part}_majority_baseline"] = rate(g is not None and g[index] == majority for g in gold)
    return metrics


def response_selection(llms: TaskModels, valid: pd.DataFrame, candidates: int = SELECTION_CANDIDATES,
                       seed: int = 0, cache: bool = False) -> tuple[pd.DataFrame, dict]:
    """Rank each row's gold reply among ``candidates − 1`` other rows' replies (drawn with ``seed``) by the
    reply adapter's mean log-likelihood per token. Returns (per-row ranks, {top1, mrr, chance, reused});
    chance is 1 / candidates. Needs at least ``candidates`` valid rows. ``cache``: reuse the ranks computed
    before from the same adapter, rows, draw and code (``evaluation_cache``)."""
    import random

    spec = TASKS["output_message"]
    records = valid.to_dict("records")
    if len(records) < candidates:
        raise ValueError(f"response selection needs {candidates} valid rows, got {len(records)}")
    draw, prompts, completions, groups = random.Random(seed), [], [], []
    for index, row in enumerate(records):
        others = draw.sample([i for i in range(len(records)) if i != index], candidates - 1)
        group = [index] + others
        groups.append(group)
        prompts += [spec.prompt(row)] * candidates
        completions += [spec.completion(records[i]) for i in group]

    def rank() -> pd.DataFrame:
        scores = llms.completion_log_likelihood("output_message", prompts, completions)
        ranks = []
        for number, group in enumerate(groups):
            row_scores = scores[number * candidates:(number + 1) * candidates]
            ranks.append(1 + sum(score > row_scores[0] for score in row_scores[1:]))
        return pd.DataFrame({"line": valid.index, "rank": ranks})

    if cache:
        inputs = {"task": "response_selection", "models": llms.signature("output_message"),
                  "pairs": content_sha256([prompts, completions])}
        table, reused = cached_frame("response_selection", inputs, rank)
    else:
        table, reused = rank(), False
    ranks = table["rank"].tolist()
    return table, {"top1": rate(r == 1 for r in ranks), "mrr": sum(1 / r for r in ranks) / len(ranks),
                   "chance": 1 / candidates, "reused": reused}


METRICS = {"output_message": _reply_metrics, "summary": _summary_metrics, "memory": _memory_metrics,
           "eyes_mouth_pose": _expression_metrics}


def save_evaluation(rows: pd.DataFrame, table: pd.DataFrame, folder) -> None:
    """Write the metric table and every generated answer next to the adapters (atomically)."""
    from pathlib import Path

    from .storage import atomic_write_text

    atomic_write_text(Path(folder) / METRICS_CSV, table.to_csv())
    atomic_write_text(Path(folder) / ANSWERS_CSV, rows.to_csv(index=False))


def headline_table(metrics: pd.DataFrame, selection: dict | None = None) -> pd.DataFrame:
    """The few figures that say whether each task learned its job, each beside the baseline it must beat."""
    def value(task, column):
        return metrics.loc[task, column] if task in metrics.index and column in metrics.columns else float("nan")

    rows = []
    if selection:
        rows.append(("reply", f"gold reply ranked first of {round(1 / selection['chance'])} (response selection)",
                     selection["top1"],
                     selection["chance"], "chance"))
    rows += [("reply", "refuses where the gold refuses (love, politics)", value("output_message", "refuses_where_gold_refuses"),
              float("nan"), ""),
             ("reply", "refuses where the gold does not", value("output_message", "refuses_where_gold_does_not"),
              0.0, "never"),
             ("summary", "character F1 with the gold summary", value("summary", "char_f1_with_gold"), float("nan"), ""),
             ("memory", "saved precision (a saved memory was due)", value("memory", "saved_precision"), float("nan"), ""),
             ("memory", "saved recall (a due memory was saved)", value("memory", "saved_recall"), float("nan"), ""),
             ("memory", "key accuracy where both hold a memory", value("memory", "key_accuracy_when_both_saved"),
              float("nan"), "")]
    rows += [("expression", f"{part} accuracy", value("eyes_mouth_pose", f"{part}_accuracy"),
              value("eyes_mouth_pose", f"{part}_majority_baseline"), "always the train majority")
             for part in ("eyes", "mouth", "pose")]
    return pd.DataFrame(rows, columns=["task", "metric", "value", "baseline", "baseline is"])
