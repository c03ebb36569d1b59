"""The decoding study (study side): one reply adapter, several ways of drawing its tokens, graded blind.

Usage::

    replies = decoding_replies(models, messages, SETTINGS["min-p 0.1"], now, seed=0)   # one row per message
    table = decoding_table(grading.set_samples(folder), grading.grade_tables(folder)["grades by recipe"])

Command line: ``benchmarks/decoding_study.py generate`` writes every setting's replies to a seeded sample
of the yardstick's everyday messages, ``draw`` makes a blind grading set of them (``data/eval/grading/``), and
``summary`` prints the table that notebook 02 rebuilds from the committed set (``decoding_table``).

Each setting is a first-try temperature, a ``Decoding`` (top-k, top-p, min-p, repetition penalty) and, for
best-of-n, a reranker that picks one of n guarded answers: ``relevance`` (cosine of the message and the
reply under the untrained S-BERT base, e5 on the embedded profile) or ``likelihood`` (the reply adapter's mean
log-probability of the reply, as in response selection).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from .decoding import DEFAULT_DECODING, Decoding
from .errors import OhloraError
from .generation import TaskModels, answer_requests
from .grading import GRADING_DIR
from .tasks import TASKS

REPLY = "output_message"
DECODING_SET = GRADING_DIR / "2026-11-30-decoding"   # the committed blind-graded set notebook 02 reads


@dataclass(frozen=True)
class DecodingSetting:
    temperature: float = TASKS[REPLY].temperature     # first try (retries add 0.1 each, as always)
    decoding: Decoding = DEFAULT_DECODING
    candidates: int = 1                               # best-of-n: guarded answers drawn per message
    reranker: str = ""                                # "relevance" | "likelihood" (best-of-n only)
    note: str = field(default="", compare=False)      # what the row tests, for the table


SETTINGS: dict[str, DecodingSetting] = {
    "original (T 0.6, top-k 50)": DecodingSetting(note="the original's sampling: the baseline"),
    "T 0.3": DecodingSetting(temperature=0.3, note="colder: fewer odd tokens, more generic"),
    "top-p 0.8": DecodingSetting(decoding=Decoding(top_p=0.8), note="nucleus sampling cuts the tail"),
    "min-p 0.1": DecodingSetting(decoding=Decoding(min_p=0.1), note="cuts tokens under 10 % of the top one"),
    "repetition penalty 1.2": DecodingSetting(decoding=Decoding(repetition_penalty=1.2), note="fewer repeats"),
    "best of 4, relevance": DecodingSetting(candidates=4, reranker="relevance",
                                            note="4 answers, the one closest to the message (S-BERT base)"),
    "best of 4, likelihood": DecodingSetting(candidates=4, reranker="likelihood",
                                             note="4 answers, the one the adapter finds most likely"),
}
BASELINE = "original (T 0.6, top-k 50)"


def reply_prompts(messages: list[str], now: datetime) -> list[tuple[str, str | None]]:
    """The reply prompt of a first turn for each message at ``now`` (as the chat builds it), and the weekday
    the reply may name."""
    from .chat import build_llm_input, neutralise_user_text
    from .timeinfo import add_time_info, day_and_part

    weekday, _ = day_and_part(now)
    return [(TASKS[REPLY].prompt({"input_data": build_llm_input(add_time_info(neutralise_user_text(message), now),
                                                                None, None)}), weekday)
            for message in messages]


def decoding_replies(models: TaskModels, messages: list[str], setting: DecodingSetting, now: datetime,
                     seed: int = 0, relevance_model=None, relevance_prefix: str = "") -> pd.DataFrame:
    """One reply per message under ``setting``: ``message, reply, candidates, fell_back, tries, seconds``."""
    if setting.candidates > 1 and setting.reranker not in ("relevance", "likelihood"):
        raise OhloraError(f"best-of-{setting.candidates} needs a reranker, not {setting.reranker!r}",
                          fix='use reranker="relevance" or "likelihood"')
    if setting.reranker == "relevance" and relevance_model is None:
        raise OhloraError("the relevance reranker needs an S-BERT model", fix="pass relevance_model=load_sbert_base(profile)")
    prompts = reply_prompts(messages, now)
    own = models.decodings[REPLY]
    models.decodings[REPLY] = setting.decoding
    try:
        drawn = [answer_requests(models, [(REPLY, prompt, weekday) for prompt, weekday in prompts],
                                 seed=seed + 100_003 * n, temperatures={REPLY: setting.temperature})
                 for n in range(setting.candidates)]
    finally:
        models.decodings[REPLY] = own
    rows = []
    for index, message in enumerate(messages):
        answers = [draw[index] for draw in drawn]
        chosen = _rerank(models, message, prompts[index][0], answers, setting.reranker, relevance_model,
                         relevance_prefix) if len(answers) > 1 else 0
        rows.append({"message": message, "reply": answers[chosen].text, "candidates": len(answers),
                     "fell_back": answers[chosen].fell_back, "tries": sum(a.tries for a in answers),
                     "seconds": sum(a.seconds for a in answers)})
    return pd.DataFrame(rows)


def _rerank(models, message, prompt, answers, reranker, relevance_model, relevance_prefix) -> int:
    usable = [i for i, answer in enumerate(answers) if not answer.fell_back] or list(range(len(answers)))
    texts = [answers[i].text for i in usable]
    if reranker == "likelihood":
        scores = models.completion_log_likelihood(REPLY, [prompt] * len(texts),
                                                  [TASKS[REPLY].completion({REPLY: t}) for t in texts])
    else:
        from .sbert import embed

        vectors = embed(relevance_model, [message, *texts], relevance_prefix)
        scores = (vectors[1:] @ vectors[0]).tolist()
    return usable[int(np.argmax(scores))]


def automatic_metrics(replies: pd.DataFrame) -> dict[str, float]:
    """From the reply texts alone: length, variety (distinct character bigrams over all replies) and the
    share that fell back to (읽씹) after five failed tries."""
    texts = [str(t) for t in replies["reply"]]
    bigrams = [t[i:i + 2] for t in texts for i in range(len(t) - 1)]
    return {"mean characters": float(np.mean([len(t) for t in texts])),
            "distinct-2": len(set(bigrams)) / max(1, len(bigrams)),
            "fell back %": 100.0 * float(np.mean([t == TASKS[REPLY].fallback for t in texts]))}


def study_table(replies: dict[str, pd.DataFrame], grades_by_recipe: pd.DataFrame | None, notes: dict[str, str],
                label: str, measured: dict[str, dict] | None = None) -> pd.DataFrame:
    """One row per study row (``label`` names the column), in the order of ``notes`` (the study's own rows
    first): what it tests, the blind grade (``grading.grade_tables(folder)["grades by recipe"]``, averaged over
    the graders), any ``measured`` columns of that row, then the reply texts' automatic metrics."""
    rows = []
    listed = [name for name in notes if name in replies] + [name for name in replies if name not in notes]
    for name in listed:
        row = {label: name, "what it tests": notes.get(name, "")}
        if grades_by_recipe is not None:
            mine = grades_by_recipe[grades_by_recipe["recipe"] == name]
            row |= {"graded 2 %": float(mine["graded 2 %"].mean()), "graded 0 %": float(mine["graded 0 %"].mean()),
                    "mean grade": float(mine["mean grade"].mean())}
        rows.append(row | (measured or {}).get(name, {}) | automatic_metrics(replies[name]))
    return pd.DataFrame(rows)


def decoding_table(replies: dict[str, pd.DataFrame], grades_by_recipe: pd.DataFrame | None = None) -> pd.DataFrame:
    """``study_table`` of the decoding settings (baseline first)."""
    return study_table(replies, grades_by_recipe, {name: s.note for name, s in SETTINGS.items()}, "setting")


def plot_decoding(ax, table: pd.DataFrame) -> None:
    """Share of replies graded 2 and graded 0 per setting (``decoding_table`` with grades), baseline marked."""
    from .plots import grade_bars

    grade_bars(ax, table, "setting", BASELINE, "blind grade by decoding setting")
