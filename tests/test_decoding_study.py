"""The decoding study: each setting reaches the reply model and is undone after, best-of-n keeps what its
reranker prefers, and the table joins blind grades with metrics of the reply texts."""
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from ohlora_utils import decoding_study
from ohlora_utils.decoding import Decoding
from ohlora_utils.decoding_study import DecodingSetting, decoding_replies
from ohlora_utils.errors import OhloraError
from ohlora_utils.generation import Generation
from ohlora_utils.tasks import TASKS

SATURDAY = datetime(2026, 11, 21, 14, 0)
REPLY = "output_message"


class FakeModels:
    """Answers each prompt with the n-th of a few canned replies (n = how often it was asked), records the
    decoding and temperature it saw, and scores a reply's likelihood by its length (longer: less likely)."""

    def __init__(self, replies):
        self.replies, self.asked, self.seen = replies, {}, []
        self.decodings = {REPLY: TASKS[REPLY].decoding}

    def generate_mixed(self, requests, seed=None, max_new_tokens=None):
        out = []
        for task, prompt, temperature in requests:
            self.seen.append((self.decodings[task], temperature))
            n = self.asked[prompt] = self.asked.get(prompt, -1) + 1
            out.append(Generation(self.replies[n % len(self.replies)], True))
        return out

    def completion_log_likelihood(self, task, prompts, completions):
        return [-len(c) for c in completions]


class Similar:
    """An 'S-BERT' whose embedding of a text counts a few words: relevance = shared words."""


def fake_embed(model, texts, prefix=""):
    words = ["떡볶이", "먹", "좋아", "날씨"]
    vectors = np.array([[float(w in t) for w in words] + [0.1] for t in texts])
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_a_setting_reaches_the_reply_model_and_the_tasks_own_decoding_is_back_after():
    models = FakeModels(["응 좋아!"])
    setting = DecodingSetting(temperature=0.3, decoding=Decoding(min_p=0.1))
    replies = decoding_replies(models, ["안녕", "뭐해?"], setting, SATURDAY)
    assert replies["reply"].tolist() == ["응 좋아!"] * 2 and replies["candidates"].tolist() == [1, 1]
    assert models.seen == [(Decoding(min_p=0.1), 0.3)] * 2
    assert models.decodings[REPLY] == TASKS[REPLY].decoding


def test_best_of_n_keeps_what_its_reranker_prefers(monkeypatch):
    import ohlora_utils.sbert as sbert

    monkeypatch.setattr(sbert, "embed", fake_embed)
    candidates = ["ㅋㅋ 그렇구나 오늘 날씨 진짜 좋다", "떡볶이 먹자!", "응"]
    by_likelihood = decoding_replies(FakeModels(candidates), ["떡볶이 먹을래?"],
                                     DecodingSetting(candidates=3, reranker="likelihood"), SATURDAY)
    assert by_likelihood["reply"].tolist() == ["응"] and by_likelihood["candidates"].tolist() == [3]
    by_relevance = decoding_replies(FakeModels(candidates), ["떡볶이 먹을래?"],
                                    DecodingSetting(candidates=3, reranker="relevance"), SATURDAY,
                                    relevance_model=Similar())
    assert by_relevance["reply"].tolist() == ["떡볶이 먹자!"]


def test_best_of_n_without_a_usable_reranker_is_refused():
    with pytest.raises(OhloraError, match="needs a reranker"):
        decoding_replies(FakeModels(["응"]), ["안녕"], DecodingSetting(candidates=2), SATURDAY)
    with pytest.raises(OhloraError, match="needs an S-BERT"):
        decoding_replies(FakeModels(["응"]), ["안녕"], DecodingSetting(candidates=2, reranker="relevance"), SATURDAY)


def test_the_prompt_is_a_first_turns_with_time_info_only_after_a_time_word():
    (plain, weekday), (timed, _) = decoding_study.reply_prompts(["안녕", "오늘 뭐 먹지?"], SATURDAY)
    assert plain == TASKS[REPLY].prompt({"input_data": "안녕"}) and weekday == "토요일"
    assert timed == TASKS[REPLY].prompt({"input_data": "(지금은 토요일 오후) 오늘 뭐 먹지?"})


def test_the_table_joins_the_graders_mean_with_metrics_of_the_texts():
    replies = {"a": pd.DataFrame({"reply": ["응 좋아", "(읽씹)"]}), "b": pd.DataFrame({"reply": ["하하", "하하"]})}
    grades = pd.DataFrame({"recipe": ["a", "a", "b", "b"], "grader": ["x", "y", "x", "y"],
                           "graded 2 %": [50.0, 100.0, 0.0, 0.0], "graded 0 %": [50.0, 0.0, 100.0, 50.0],
                           "mean grade": [1.0, 2.0, 0.0, 0.5]})
    table = decoding_study.decoding_table(replies, grades).set_index("setting")
    assert table.loc["a", "graded 2 %"] == 75.0 and table.loc["b", "mean grade"] == 0.25
    assert table.loc["a", "fell back %"] == 50.0 and table.loc["b", "distinct-2"] == 0.5
    assert table.loc["a", "mean characters"] == pytest.approx((4 + 4) / 2)


def test_every_listed_setting_is_valid_and_the_baseline_is_the_originals_sampling():
    baseline = decoding_study.SETTINGS[decoding_study.BASELINE]
    assert (baseline.temperature, baseline.decoding, baseline.candidates) == (0.6, Decoding(top_k=50), 1)
    assert all(s.candidates == 1 or s.reranker in ("relevance", "likelihood") for s in decoding_study.SETTINGS.values())
