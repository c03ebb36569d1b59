"""Ethics classifier: pairs, training and loading, the runtime rule, thresholds, bad input, evaluation helpers.

The tiny profile's scores are noise: these tests check mechanics; quality is measured in notebook 04.
"""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from ohlora_utils import ethics
from ohlora_utils.data import ETHICS_CATEGORIES, load_ethics
from ohlora_utils.errors import OhloraError
from ohlora_utils.ethics import GENERAL, INSULT, LOVE, ORIGINAL_THRESHOLDS, POLITICS
from ohlora_utils.sbert import SBERT_META, SbertTrainConfig
from ohlora_utils.storage import write_manifest

REFUSAL = "미안, 그건 좀 부담스러워"
FRIENDLY = "좋아! 같이 해 보자 😊"


@pytest.fixture(scope="module")
def small_dataset():
    frame = load_ethics()
    train = frame[frame["split"] == "train"].groupby("category").head(10)
    test = frame[frame["split"] == "test"].groupby("category").head(3)
    return pd.concat([train, test])


@pytest.fixture(scope="module")
def trained(tiny_profile, small_dataset, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("ethics") / "sbert_ethics"
    config = SbertTrainConfig(epochs=1, batch_size=8, max_steps=4, learning_rate=1e-3)
    history = ethics.train_ethics(tiny_profile, config, model_dir, dataset=small_dataset)
    return model_dir, history


@pytest.fixture(scope="module")
def classifier(trained):
    return ethics.load_classifier(trained[0])  # shared: tests that fake its scores do so through monkeypatch


def fake_scores(monkeypatch, classifier, table):
    """Make ``classifier`` score a text by looking it up in ``table`` (text → the four scores)."""
    def score_texts(texts):
        return np.array([[table[text][name] for name in ETHICS_CATEGORIES] for text in texts])
    monkeypatch.setattr(classifier, "score_texts", score_texts)


def scores(love=0.0, general=0.0, politics=0.0, insult=0.0):
    return {LOVE: love, GENERAL: general, POLITICS: politics, INSULT: insult}


# --- pairs and training ---------------------------------------------------------------------------------

def test_each_prompt_gives_four_pairs_labelled_one_for_its_own_category():
    frame = pd.DataFrame({"text": ["사랑해", "점심 뭐 먹지"], "category": [LOVE, GENERAL]})
    pairs = ethics.ethics_pairs(frame)
    assert list(pairs["a"]) == ["사랑해"] * 4 + ["점심 뭐 먹지"] * 4
    assert list(pairs["b"]) == list(ETHICS_CATEGORIES) * 2
    assert list(pairs["label"]) == [1, 0, 0, 0, 0, 1, 0, 0]


def test_validation_split_is_carved_from_train_per_category_and_seeded():
    train = load_ethics().query("split == 'train'")
    kept, valid = ethics.split_validation(train, share=0.1, seed=7)
    assert len(kept) + len(valid) == len(train) and not set(kept.index) & set(valid.index)
    assert set(valid["category"]) == set(ETHICS_CATEGORIES)
    expected = (train["category"].value_counts() * 0.1).round().astype(int).sort_index()
    assert valid["category"].value_counts().sort_index().equals(expected)
    assert list(ethics.split_validation(train, 0.1, 7)[1].index) == list(valid.index)
    assert list(ethics.split_validation(train, 0.1, 8)[1].index) != list(valid.index)


def test_presets_quick_default_paper():
    assert set(ethics.PRESETS) == {"quick", "default", "paper"}
    assert 0 < ethics.PRESETS["quick"].max_steps <= 100
    paper = ethics.PRESETS["paper"]
    assert (paper.epochs, paper.batch_size, paper.max_steps) == (10, 16, -1)
    assert ethics.preset_config("default", epochs=0, seed=3).epochs == ethics.PRESETS["default"].epochs
    assert ethics.preset_config("default", epochs=5, seed=3).epochs == 5
    assert ethics.preset_config("quick", seed=3).seed == 3
    with pytest.raises(OhloraError, match="unknown preset"):
        ethics.preset_config("huge")


def test_training_saves_a_model_with_an_epoch_log_that_loads(trained):
    model_dir, history = trained
    assert {"train_loss", "valid_loss"} <= set(history.columns) and len(history) == 1
    meta = json.loads((model_dir / SBERT_META).read_text(encoding="utf-8"))
    assert meta["task"] == "ethics" and meta["categories"] == list(ETHICS_CATEGORIES)
    assert meta["valid_prompts"] == 4 and meta["train_prompts"] == 36


def test_scores_cover_exactly_the_four_categories(classifier):
    result = classifier.scores("로라야 오늘 뭐 했어?")
    assert list(result) == list(ETHICS_CATEGORIES)
    # each score is the cosine of the message (query side) with the category name (passage side)
    encode = lambda texts, prefix: classifier.model.encode([prefix + t for t in texts], normalize_embeddings=True)
    cosines = encode(["로라야 오늘 뭐 했어?"], classifier.meta.get("query_prefix", "")) @ \
        encode(list(ETHICS_CATEGORIES), classifier.meta.get("passage_prefix", "")).T
    assert list(result.values()) == pytest.approx(cosines[0].tolist(), abs=1e-5)
    assert set(classifier.check("로라야 오늘 뭐 했어?", REFUSAL)) <= set(ethics.SANCTION_CATEGORIES)


def test_a_damaged_model_folder_is_a_clear_error_naming_it(trained, tmp_path):
    copy = tmp_path / "sbert_ethics"
    shutil.copytree(trained[0], copy)
    weights = next(copy.rglob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF                           # damaged in place, same size
    weights.write_bytes(bytes(data))
    with pytest.raises(OhloraError, match=f"{copy}.*damaged.*train it again"):
        ethics.load_classifier(copy)


def test_missing_or_foreign_model_is_a_clear_error(trained, tmp_path):
    with pytest.raises(OhloraError, match="no trained S-BERT model"):
        ethics.load_classifier(tmp_path / "nothing")
    foreign = tmp_path / "memory_model"
    shutil.copytree(trained[0], foreign)
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
def test_runtime_rule(classifier, monkeypatch, given, reply, expected):
    fake_scores(monkeypatch, classifier, {"메시지": given})
    assert classifier.check("메시지", reply, ORIGINAL_THRESHOLDS) == expected


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


def test_explain_on_the_classifier_reads_its_scores_and_handles_empty_text(classifier, monkeypatch):
    fake_scores(monkeypatch, classifier, {"메시지": scores(love=0.99)})
    assert classifier.explain("메시지", FRIENDLY, ORIGINAL_THRESHOLDS).endswith("not counted")
    assert classifier.explain(" \u200b ", FRIENDLY) == "empty message: nothing to check"
    assert classifier.verdict("메시지", REFUSAL, ORIGINAL_THRESHOLDS) == (
        classifier.check("메시지", REFUSAL, ORIGINAL_THRESHOLDS), classifier.explain("메시지", REFUSAL, ORIGINAL_THRESHOLDS))


def test_thresholds_passed_to_check_win_and_must_be_complete(classifier, monkeypatch):
    fake_scores(monkeypatch, classifier, {"메시지": scores(love=0.9)})
    assert classifier.check("메시지", REFUSAL, {**ORIGINAL_THRESHOLDS, LOVE: 0.85}) == [LOVE]
    assert classifier.check("메시지", REFUSAL) == []        # the classifier's own (here: the original's)
    with pytest.raises(OhloraError, match="missing: 일반"):
        classifier.check("메시지", REFUSAL, {LOVE: 0.9, POLITICS: 0.9, INSULT: 0.9})


def test_thresholds_default_to_the_originals_then_the_stored_ones(trained, small_dataset, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(trained[0], model_dir)
    first = ethics.load_classifier(model_dir)
    assert first.thresholds == ORIGINAL_THRESHOLDS and first.thresholds_source == "original (no thresholds file)"
    test = small_dataset[small_dataset["split"] == "test"]
    choice = ethics.calibrate(first, test, "auto")
    assert list(choice.index) == list(ethics.SANCTION_CATEGORIES)
    stored = json.loads((model_dir / ethics.THRESHOLDS_FILE).read_text(encoding="utf-8"))
    again = ethics.load_classifier(model_dir)
    assert again.thresholds == stored["thresholds"] == first.thresholds and again.thresholds_source == "auto"
    assert again.thresholds[GENERAL] == ORIGINAL_THRESHOLDS[GENERAL]
    confusion = pd.read_csv(model_dir / ethics.CONFUSION_FILE, index_col=0)
    assert list(confusion.index) == list(ETHICS_CATEGORIES) and confusion.to_numpy().sum() == len(test)
    ethics.calibrate(again, test, "original")
    assert ethics.load_classifier(model_dir).thresholds == ORIGINAL_THRESHOLDS
    (model_dir / ethics.THRESHOLDS_FILE).write_text("{broken", encoding="utf-8")
    damaged = ethics.load_classifier(model_dir)
    assert damaged.thresholds == ORIGINAL_THRESHOLDS and "unreadable" in damaged.thresholds_source


# --- bad input ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   \n\t", "\u200b\u200b", "(답변 시작) ### 답변: (답변 종료)"])
def test_empty_text_is_a_clear_error_to_score_and_breaks_no_rule(classifier, text):
    with pytest.raises(OhloraError, match="empty message"):
        classifier.scores(text)
    assert classifier.check(text, REFUSAL) == []


def test_non_text_is_a_clear_error(classifier):
    with pytest.raises(OhloraError, match="must be text"):
        classifier.check(None, REFUSAL)


@pytest.mark.parametrize("text", ["😍😍😍💕", "ㅋㅋㅋㅋㅋ", "ㅅㄹㅎ ㅈㅊ ㄴㄱㅁ", "🙏"])
def test_emoji_or_jamo_only_text_gets_ordinary_scores(classifier, text):
    result = classifier.scores(text)
    assert list(result) == list(ETHICS_CATEGORIES) and all(np.isfinite(list(result.values())))
    assert set(classifier.check(text, REFUSAL)) <= set(ethics.SANCTION_CATEGORIES)


def test_markers_typed_by_the_user_do_not_change_the_verdict(classifier):
    plain = classifier.scores("로라야 나랑 사귀자")
    marked = classifier.scores("(답변 시작) ### 답변: 로라야 나랑 (요약 종료) 사귀자 (답변 종료)")
    assert marked == pytest.approx(plain, abs=1e-6)


def test_very_long_text_is_checked_window_by_window(classifier, monkeypatch):
    text = "오늘 날씨 좋다 " * 2000 + "느금마"
    assert len(classifier.scores(text)) == 4                # the model truncates: still a clear result
    assert set(classifier.check(text, FRIENDLY)) <= set(ethics.SANCTION_CATEGORIES)

    def score_texts(texts):  # flags only the window that holds the insult at the very end
        return np.array([[0.0, 0.0, 0.0, 0.95 if "느금마" in t else 0.0] for t in texts])
    monkeypatch.setattr(classifier, "score_texts", score_texts)
    assert classifier.check(text, FRIENDLY) == [INSULT]


def test_text_windows_cut_at_spaces_and_keep_every_character():
    text = "가나다 " * 100 + "x" * 450
    windows = ethics.text_windows(text.strip(), size=50)
    assert all(len(window) <= 50 for window in windows)
    assert "".join(windows).replace(" ", "") == text.replace(" ", "")
    assert ethics.text_windows("짧은 말") == ["짧은 말"]


# --- evaluation helpers ---------------------------------------------------------------------------------

def test_confusion_matrix_metrics_and_accuracy_by_hand():
    gold = pd.Series([LOVE, LOVE, GENERAL, POLITICS, INSULT])
    predicted = pd.Series([LOVE, GENERAL, GENERAL, POLITICS, LOVE])
    matrix = ethics.confusion_matrix(gold, predicted)
    assert list(matrix.index) == list(matrix.columns) == list(ETHICS_CATEGORIES)
    assert matrix.loc[LOVE, GENERAL] == 1 and matrix.loc[INSULT, LOVE] == 1 and matrix.to_numpy().sum() == 5
    metrics = ethics.category_metrics(gold, predicted)
    assert metrics.loc[LOVE, "precision"] == pytest.approx(0.5) and metrics.loc[LOVE, "recall"] == pytest.approx(0.5)
    assert metrics.loc[GENERAL, "f1"] == pytest.approx(2 / 3) and metrics.loc[INSULT, "f1"] == 0
    assert ethics.argmax_accuracy(gold, predicted) == (3, 5)


def sweep_frame():
    rows = [scores(love=0.99), scores(love=0.965), scores(love=0.60), scores(love=0.93, general=0.1),
            scores(general=0.9, love=0.96), scores(politics=0.97), scores(insult=0.92), scores(politics=0.5)]
    gold = pd.Series([LOVE, LOVE, LOVE, GENERAL, GENERAL, POLITICS, INSULT, POLITICS])
    return pd.DataFrame(rows), gold


def test_sweep_counts_flags_per_category_with_the_veto():
    frame, gold = sweep_frame()
    sweep = ethics.threshold_sweep(frame, gold, grid=[0.9, 0.95, 0.98])
    love = sweep[sweep["category"] == LOVE].set_index("threshold")
    assert love.loc[0.9, ["tp", "fp", "fn"]].tolist() == [2, 1, 1]   # the 0.96 general prompt is vetoed
    assert love.loc[0.95, ["tp", "fp", "fn"]].tolist() == [2, 0, 1]
    assert love.loc[0.98, "recall"] == pytest.approx(1 / 3)


def test_chosen_threshold_is_the_middle_of_the_best_band():
    frame, gold = sweep_frame()
    sweep = ethics.threshold_sweep(frame, gold, grid=np.round(np.arange(0.90, 1.0, 0.01), 2))
    chosen, table = ethics.choose_thresholds(sweep, target_precision=0.95)
    assert chosen[LOVE] == pytest.approx(0.95)     # 0.94–0.96 keep 2/3 love at precision 1 → middle
    assert chosen[GENERAL] == ORIGINAL_THRESHOLDS[GENERAL]
    assert table.loc[LOVE, "recall"] == pytest.approx(2 / 3) and table.loc[LOVE, "precision"] == 1


def test_rule_report_counts_caught_and_falsely_flagged_prompts():
    frame, gold = sweep_frame()
    report = ethics.rule_report(frame, gold, {**ORIGINAL_THRESHOLDS, LOVE: 0.9, POLITICS: 0.9})
    assert report.loc[LOVE, "flagged_as_own"] == 2 and report.loc[GENERAL, "flagged"] == 1
    assert ethics.rule_summary(report) == {"caught": (4, 6), "false": (1, 2)}
    friendly = ethics.rule_report(frame, gold, {**ORIGINAL_THRESHOLDS, LOVE: 0.9}, reply=FRIENDLY)
    assert ethics.rule_summary(friendly)["caught"] == (1, 6)   # only 패드립 counts without a refusal
    errors = ethics.rule_errors(pd.Series([f"t{i}" for i in range(8)]), gold, frame,
                                {**ORIGINAL_THRESHOLDS, LOVE: 0.9, POLITICS: 0.9})
    assert set(errors["error"]) == {"missed", "false sanction"} and len(errors) == 3


def test_argmax_errors_list_the_most_confident_mistakes_first():
    frame, gold = sweep_frame()
    errors = ethics.argmax_errors(pd.Series([f"t{i}" for i in range(8)]), gold, frame)
    assert list(errors["text"]) == ["t3", "t4"]          # margins 0.83 and 0.06; only wrong argmaxes
    assert errors["margin"].is_monotonic_decreasing
