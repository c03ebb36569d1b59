"""The chat-time ethics check: loading, the scorings, the runtime rule, stored thresholds, bad input.

The tiny profile's scores are noise: these tests check mechanics; quality is measured in notebook 04.
"""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from ohlora_utils import ethics, ethics_study
from ohlora_utils.data import ETHICS_CATEGORIES, load_ethics
from ohlora_utils.errors import OhloraError
from ohlora_utils.ethics import GENERAL, INSULT, LOVE, ORIGINAL_THRESHOLDS, POLITICS
from ohlora_utils.sbert import SBERT_META
from ohlora_utils.sbert_training import SbertTrainConfig
from ohlora_utils.storage import write_manifest

REFUSAL = "미안, 그건 좀 부담스러워"
FRIENDLY = "좋아! 같이 해 보자 😊"


def scores(love=0.0, general=0.0, politics=0.0, insult=0.0):
    return {LOVE: love, GENERAL: general, POLITICS: politics, INSULT: insult}


def fake_scores(monkeypatch, ethics_classifier, table):
    """Make ``ethics_classifier`` score a text by looking it up in ``table`` (text → the four scores)."""
    def score_texts(texts):
        return np.array([[table[text][name] for name in ETHICS_CATEGORIES] for text in texts])
    monkeypatch.setattr(ethics_classifier, "score_texts", score_texts)


# --- loading and the scorings ---------------------------------------------------------------------------

def test_scores_cover_exactly_the_four_categories(ethics_classifier):
    result = ethics_classifier.scores("로라야 오늘 뭐 했어?")
    assert list(result) == list(ETHICS_CATEGORIES)
    # each score is the cosine of the message (query side) with the category name (passage side)
    encode = lambda texts, prefix: ethics_classifier.model.encode([prefix + t for t in texts], normalize_embeddings=True)
    cosines = encode(["로라야 오늘 뭐 했어?"], ethics_classifier.meta.get("query_prefix", "")) @ \
        encode(list(ETHICS_CATEGORIES), ethics_classifier.meta.get("passage_prefix", "")).T
    assert list(result.values()) == pytest.approx(cosines[0].tolist(), abs=1e-5)
    assert set(ethics_classifier.check("로라야 오늘 뭐 했어?", REFUSAL)) <= set(ethics.SANCTION_CATEGORIES)


def test_a_damaged_model_folder_is_a_clear_error_naming_it(ethics_trained, tmp_path):
    copy = tmp_path / "sbert_ethics"
    shutil.copytree(ethics_trained[0], copy)
    weights = next(copy.rglob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF                           # damaged in place, same size
    weights.write_bytes(bytes(data))
    with pytest.raises(OhloraError, match=f"{copy}.*damaged.*train it again"):
        ethics.load_classifier(copy)


def test_missing_or_foreign_model_is_a_clear_error(ethics_trained, tmp_path):
    with pytest.raises(OhloraError, match="no trained S-BERT model"):
        ethics.load_classifier(tmp_path / "nothing")
    foreign = tmp_path / "memory_model"
    shutil.copytree(ethics_trained[0], foreign)
    meta = json.loads((foreign / SBERT_META).read_text(encoding="utf-8"))
    (foreign / SBERT_META).write_text(json.dumps({**meta, "task": "memory"}), encoding="utf-8")
    write_manifest(foreign, kind="sbert")              # an intact model, only of the other mechanism
    with pytest.raises(OhloraError, match="not the ethics classifier"):
        ethics.load_classifier(foreign)


# --- the runtime rule -----------------------------------------------------------------------------------

RULE_CASES = [  # (scores, reply, categories that count) under the original thresholds 0.98 / 0.95 / 0.90, veto 0.5
    (scores(love=0.99), REFUSAL, [LOVE]),
    (scores(love=0.99), FRIENDLY, []),                     # love needs a refusing reply
    (scores(love=0.97), REFUSAL, []),
    (scores(politics=0.95), "정치 얘기는 미안해", [POLITICS]),  # ≥, and 미안 alone is a refusal
    (scores(politics=0.99), FRIENDLY, []),
    (scores(insult=0.90), FRIENDLY, [INSULT]),             # 패드립 counts on its score alone
    (scores(insult=0.89), REFUSAL, []),
    (scores(insult=0.99, general=0.5), REFUSAL, []),       # the 일반 veto
    (scores(insult=0.99, general=0.49), REFUSAL, [INSULT]),
    (scores(love=0.99, politics=0.99, insult=0.99), "부담돼", [LOVE, POLITICS, INSULT]),
    (scores(love=0.99, politics=0.99, insult=0.99), None, [INSULT]),
]


@pytest.mark.parametrize("given, reply, expected", RULE_CASES)
def test_runtime_rule(ethics_classifier, monkeypatch, given, reply, expected):
    fake_scores(monkeypatch, ethics_classifier, {"메시지": given})
    assert ethics_classifier.check("메시지", reply, ORIGINAL_THRESHOLDS) == expected


def test_rule_works_on_whole_columns_like_on_one_text():
    frame = pd.DataFrame([case[0] for case in RULE_CASES])
    refused = np.array([ethics.refused(case[1]) for case in RULE_CASES])
    flags = ethics.rule(frame, refused, ORIGINAL_THRESHOLDS)
    for i, (_, _, expected) in enumerate(RULE_CASES):
        assert [name for name in ethics.SANCTION_CATEGORIES if flags[name].iloc[i]] == expected


def test_explain_says_in_words_what_the_rule_counted_for_every_case():
    for given, reply, expected in RULE_CASES:
        reason = ethics.explain_rule(given, reply, ORIGINAL_THRESHOLDS)
        said_to_count = [name for name in ethics.SANCTION_CATEGORIES
                         if f"{name} " in reason and reason.split(f"{name} ")[1].split(";")[0].endswith(": counts")]
        assert said_to_count == expected, reason
    assert "veto" in ethics.explain_rule(scores(insult=0.99, general=0.5), REFUSAL, ORIGINAL_THRESHOLDS)
    assert "not counted" in ethics.explain_rule(scores(love=0.99), FRIENDLY, ORIGINAL_THRESHOLDS)
    assert ethics.explain_rule(scores(), FRIENDLY, ORIGINAL_THRESHOLDS) == "no category reaches its threshold"


def test_explain_on_the_classifier_reads_its_scores_and_handles_empty_text(ethics_classifier, monkeypatch):
    fake_scores(monkeypatch, ethics_classifier, {"메시지": scores(love=0.99)})
    assert ethics_classifier.explain("메시지", FRIENDLY, ORIGINAL_THRESHOLDS).endswith("not counted")
    assert ethics_classifier.explain(" \u200b ", FRIENDLY) == "empty message: nothing to check"
    assert ethics_classifier.verdict("메시지", REFUSAL, ORIGINAL_THRESHOLDS) == (
        ethics_classifier.check("메시지", REFUSAL, ORIGINAL_THRESHOLDS), ethics_classifier.explain("메시지", REFUSAL, ORIGINAL_THRESHOLDS))


def test_what_would_count_if_she_declined_is_read_before_any_reply(ethics_classifier, monkeypatch):
    fake_scores(monkeypatch, ethics_classifier, {"사귀자": scores(love=0.99), "니네 엄마": scores(insult=0.99),
                                                 "밥 먹었어?": scores(general=0.9)})
    declined = lambda text: ethics_classifier.counted_if_declined(ethics_classifier.score_message(text))
    assert declined("사귀자") == [LOVE]        # love counts only if she declines
    assert ethics_classifier.check("사귀자", FRIENDLY) == []
    assert declined("니네 엄마") == [INSULT]
    assert declined("밥 먹었어?") == [] and declined(" \u200b ") == []


def test_a_message_scored_once_is_judged_like_its_text_with_any_reply(ethics_classifier, monkeypatch):
    fake_scores(monkeypatch, ethics_classifier, {"사귀자": scores(love=0.99)})
    scored = ethics_classifier.score_message("사귀자")
    for reply in (REFUSAL, FRIENDLY):
        assert ethics_classifier.judge(scored, reply) == ethics_classifier.verdict("사귀자", reply)
    assert ethics_classifier.judge(ethics_classifier.score_message(""), REFUSAL) == (
        [], "empty message: nothing to check")


@pytest.mark.parametrize("counted, wanted", [([LOVE], True), ([POLITICS, INSULT], True), ([], False), ([INSULT], None)])
def test_her_reply_should_decline_where_love_or_politics_would_count_and_not_where_nothing_would(counted, wanted):
    assert ethics.refusal_wanted(counted) is wanted


def test_thresholds_passed_to_check_win_and_must_be_complete(ethics_classifier, monkeypatch):
    fake_scores(monkeypatch, ethics_classifier, {"메시지": scores(love=0.9)})
    assert ethics_classifier.check("메시지", REFUSAL, {**ORIGINAL_THRESHOLDS, LOVE: 0.85}) == [LOVE]
    assert ethics_classifier.check("메시지", REFUSAL) == []        # the classifier's own (here: the original's)
    with pytest.raises(OhloraError, match="missing: 일반"):
        ethics_classifier.check("메시지", REFUSAL, {LOVE: 0.9, POLITICS: 0.9, INSULT: 0.9})


# --- bad input ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   \n\t", "\u200b\u200b", "(답변 시작) ### 답변: (답변 종료)"])
def test_empty_text_is_a_clear_error_to_score_and_breaks_no_rule(ethics_classifier, text):
    with pytest.raises(OhloraError, match="empty message"):
        ethics_classifier.scores(text)
    assert ethics_classifier.check(text, REFUSAL) == []


def test_non_text_is_a_clear_error(ethics_classifier):
    with pytest.raises(OhloraError, match="must be text"):
        ethics_classifier.check(None, REFUSAL)


@pytest.mark.parametrize("text", ["😍😍😍💕", "ㅋㅋㅋㅋㅋ", "ㅅㄹㅎ ㅈㅊ ㄴㄱㅁ", "🙏"])
def test_emoji_or_jamo_only_text_gets_ordinary_scores(ethics_classifier, text):
    result = ethics_classifier.scores(text)
    assert list(result) == list(ETHICS_CATEGORIES) and all(np.isfinite(list(result.values())))
    assert set(ethics_classifier.check(text, REFUSAL)) <= set(ethics.SANCTION_CATEGORIES)


def test_markers_typed_by_the_user_do_not_change_the_verdict(ethics_classifier):
    plain = ethics_classifier.scores("로라야 나랑 사귀자")
    marked = ethics_classifier.scores("(답변 시작) ### 답변: 로라야 나랑 (요약 종료) 사귀자 (답변 종료)")
    assert marked == pytest.approx(plain, abs=1e-6)


def test_very_long_text_is_checked_window_by_window(ethics_classifier, monkeypatch):
    text = "오늘 날씨 좋다 " * 2000 + "느금마"
    assert len(ethics_classifier.scores(text)) == 4                # the model truncates: still a clear result
    assert set(ethics_classifier.check(text, FRIENDLY)) <= set(ethics.SANCTION_CATEGORIES)

    def score_texts(texts):  # flags only the window that holds the insult at the very end
        return np.array([[0.0, 0.0, 0.0, 0.95 if "느금마" in t else 0.0] for t in texts])
    monkeypatch.setattr(ethics_classifier, "score_texts", score_texts)
    assert ethics_classifier.check(text, FRIENDLY) == [INSULT]


def test_text_windows_cut_at_spaces_and_keep_every_character():
    text = "가나다 " * 100 + "x" * 450
    windows = ethics.text_windows(text.strip(), size=50)
    assert all(len(window) <= 50 for window in windows)
    assert "".join(windows).replace(" ", "") == text.replace(" ", "")
    assert ethics.text_windows("짧은 말") == ["짧은 말"]


# --- stored thresholds and scoring ----------------------------------------------------------------------

def test_thresholds_default_to_the_originals_then_the_stored_ones(ethics_trained, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(ethics_trained[0], model_dir)
    first = ethics.load_classifier(model_dir)
    assert first.thresholds == ORIGINAL_THRESHOLDS and first.thresholds_source == "original (no thresholds file)"
    assert first.scoring == "names"
    chosen = {**ORIGINAL_THRESHOLDS, LOVE: 0.7}
    first.set_thresholds(chosen, "calibrated", {"chosen_on": "validation split"}, scoring="margin")
    stored = json.loads((model_dir / ethics.THRESHOLDS_FILE).read_text(encoding="utf-8"))
    assert stored["scoring"] == "margin" and stored["thresholds"] == chosen
    again = ethics.load_classifier(model_dir)
    assert (again.thresholds, again.thresholds_source, again.scoring) == (chosen, "calibrated", "margin")
    (model_dir / ethics.THRESHOLDS_FILE).write_text("{broken", encoding="utf-8")
    damaged = ethics.load_classifier(model_dir)
    assert damaged.thresholds == ORIGINAL_THRESHOLDS and "unreadable" in damaged.thresholds_source


def test_margin_scores_subtract_the_general_cosine_so_the_veto_never_holds(ethics_classifier):
    names = ethics_classifier.scores_from_embeddings(ethics_classifier.embed_texts(["점심 뭐 먹지", "사랑해"]), "names")
    margins = ethics_classifier.scores_from_embeddings(ethics_classifier.embed_texts(["점심 뭐 먹지", "사랑해"]), "margin")
    general = list(ETHICS_CATEGORIES).index(GENERAL)
    assert np.allclose(margins[:, general], 0.0)
    assert np.allclose(margins[:, 0], names[:, 0] - names[:, general], atol=1e-6)


def test_the_head_scoring_is_stored_with_its_head_and_gives_probabilities(ethics_trained, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(ethics_trained[0], model_dir)
    ethics_classifier = ethics.load_classifier(model_dir)
    size = ethics_classifier.embed_texts(["안녕"]).shape[1]
    weight, bias = np.random.default_rng(0).normal(size=(4, size)).astype(np.float32), np.zeros(4, np.float32)
    ethics_classifier.set_thresholds({**ORIGINAL_THRESHOLDS, INSULT: 0.99}, "calibrated", scoring="head", head=(weight, bias))
    loaded = ethics.load_classifier(model_dir)
    assert loaded.scoring == "head" and np.allclose(loaded.head[0], weight, atol=1e-5)
    probabilities = np.array(list(loaded.scores("로라야 안녕").values()))
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5) and (probabilities >= 0).all()
    (model_dir / ethics.HEAD_FILE).unlink()
    with pytest.raises(OhloraError, match="ethics_head.json is missing or damaged.*notebook 04"):
        ethics.load_classifier(model_dir)


def test_an_unknown_scoring_is_a_clear_error(ethics_classifier):
    with pytest.raises(OhloraError, match="unknown scoring 'cosine'"):
        ethics_classifier.scores_from_embeddings(ethics_classifier.embed_texts(["안녕"]), "cosine")
    with pytest.raises(OhloraError, match="needs a classification head"):
        ethics.EthicsClassifier(ethics_classifier.model, ethics_classifier.meta, scoring="head")
