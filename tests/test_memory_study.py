"""Memory retrieval, study side: key labels, pairs and their sampling, presets, the sweep and the threshold's
choice on the valid split, the yardstick's asked turns, and a tiny training run end to end."""
import json

import numpy as np
import pandas as pd
import pytest

from ohlora_utils import memory, memory_study
from ohlora_utils.data import load_memory
from ohlora_utils.errors import OhloraError
from ohlora_utils.formats import format_memory_item
from ohlora_utils.sbert_training import SbertTrainConfig

LINES = pd.DataFrame({
    "key": ["상태", "상태", "오늘 일정", "내일 일정"],
    "value": ["피곤함", "배고픔", "치과", "면접"],
    "message": ["나 너무 지쳤어", "배고파", "오늘 이 치료 무서워", "내일 떨려"],
})
LINES["memory"] = [format_memory_item(k, v) for k, v in zip(LINES["key"], LINES["value"])]
COSINES = pd.DataFrame([[1.0, 0.70, 0.60], [0.70, 1.0, 0.95], [0.60, 0.95, 0.9999]],
                       index=["상태", "내일 일정", "오늘 일정"], columns=["상태", "내일 일정", "오늘 일정"])


# --- labels and pairs ---------------------------------------------------------------------------------

def test_key_label_rescales_the_base_cosine_and_floors_it_at_zero():
    assert memory_study.key_label(1.0) == pytest.approx(1.0)
    assert memory_study.key_label(0.95) == pytest.approx(0.87)
    assert memory_study.key_label(0.8) == pytest.approx(0.48)
    assert memory_study.key_label(0.6) == 0.0 and memory_study.key_label(-0.3) == 0.0


def test_equal_keys_get_exactly_one_other_keys_the_rescaled_cosine():
    labels = memory_study.key_labels(COSINES)
    assert labels.loc["오늘 일정", "오늘 일정"] == 1.0  # not 2.6 · 0.9999 − 1.6
    assert labels.loc["오늘 일정", "내일 일정"] == pytest.approx(0.87)
    assert labels.loc["상태", "내일 일정"] == pytest.approx(0.22)
    assert labels.loc["상태", "오늘 일정"] == 0.0


def test_every_ordered_pair_gives_memory_of_i_with_message_of_j():
    pairs = memory_study.build_pairs(LINES, memory_study.key_labels(COSINES))
    assert len(pairs) == 16
    assert set(zip(pairs["memory"], pairs["message"])) == {(m, q) for m in LINES["memory"] for q in LINES["message"]}
    row = pairs[(pairs["memory"] == "[오늘 일정: 치과]") & (pairs["message"] == "내일 떨려")].iloc[0]
    assert (row["memory_key"], row["message_key"], row["label"]) == ("오늘 일정", "내일 일정", pytest.approx(0.87))
    same_key = pairs["memory_key"] == pairs["message_key"]
    assert (pairs.loc[same_key, "label"] == 1.0).all() and same_key.sum() == 6  # 상태 2×2 + 1 + 1
    assert (pairs.loc[~same_key, "label"] < 1.0).all()


def test_a_key_without_a_label_is_a_clear_error():
    with pytest.raises(OhloraError, match="no label for keys"):
        memory_study.build_pairs(LINES, memory_study.key_labels(COSINES.drop(index="상태", columns="상태")))


def test_the_lines_split_three_ways():
    lines = LINES.assign(split=["train", "train", "valid", "test"])
    parts = memory_study.split_lines(lines)
    assert {name: part["message"].tolist() for name, part in parts.items()} == {
        "train": ["나 너무 지쳤어", "배고파"], "valid": ["오늘 이 치료 무서워"], "test": ["내일 떨려"]}


def test_in_batch_lines_number_each_key_by_its_row_of_the_labels():
    labels = memory_study.key_labels(COSINES)
    lines = memory_study._as_lines(LINES, labels)
    assert lines["group"].tolist() == [0, 0, 2, 1]   # 상태, 상태, 오늘 일정, 내일 일정 in COSINES' order
    assert lines["a"].tolist() == LINES["message"].tolist() and lines["b"].tolist() == LINES["memory"].tolist()
    with pytest.raises(OhloraError, match="no label for keys"):
        memory_study._as_lines(LINES, memory_study.key_labels(COSINES.drop(index="상태", columns="상태")))


def test_the_cpu_presets_learn_the_pairs_in_batches_of_lines_and_paper_one_pair_at_a_time():
    assert memory_study.train_config("default").in_batch and memory_study.train_config("quick").in_batch
    assert not memory_study.train_config("paper").in_batch


def test_training_pairs_put_the_message_on_the_query_side():
    pairs = memory_study.build_pairs(LINES.head(1), memory_study.key_labels(COSINES))
    assert memory_study.as_training_pairs(pairs).iloc[0].tolist() == ["나 너무 지쳤어", "[상태: 피곤함]", 1.0]


# --- presets ------------------------------------------------------------------------------------------

def test_presets_paper_is_the_original_quick_is_a_few_dozen_steps():
    paper = memory_study.train_config("paper")
    assert (paper.epochs, paper.batch_size, paper.learning_rate, paper.max_steps) == (10, 16, 2e-5, -1)
    assert 0 < memory_study.train_config("quick").max_steps <= 60
    assert memory_study.train_config("default").batch_size == 16


def test_notebook_overrides_replace_the_presets_values():
    config = memory_study.train_config("quick", epochs=2, batch_size=8, seed=3)
    assert (config.epochs, config.max_steps, config.batch_size, config.seed) == (2, -1, 8, 3)
    assert memory_study.train_config("quick", 0, 0) == memory_study.PRESETS["quick"]
    with pytest.raises(OhloraError, match="unknown preset"):
        memory_study.train_config("huge")
    with pytest.raises(OhloraError, match="must be ≥ 0"):
        memory_study.train_config("quick", epochs=-1)


# --- evaluation helpers --------------------------------------------------------------------------------

KEYS = ["a", "a", "b", "c"]
SIMILARITY = np.array([  # rows: messages, columns: memories (same lines)
    [0.90, 0.95, 0.20, 0.10],   # a → own key (not its own line)
    [0.80, 0.70, 0.85, 0.10],   # a → b: wrong key on top
    [0.10, 0.20, 0.60, 0.30],   # b → own line
    [0.50, 0.40, 0.30, 0.20],   # c → a: wrong key on top
])


def test_top1_counts_right_keys_and_own_lines():
    assert memory_study.top1_retrieval(SIMILARITY, KEYS) == {"right_key": 2, "own_item": 1, "total": 4}


# six lines over three keys: a message's cosine to a memory of its own key is 0.9, to other keys 0.3,
# except message 4 (key c), whose nearest memory is of key a (0.95)
STORE_KEYS = np.array(["a", "a", "b", "b", "c", "c"])
STORE_SIMILARITY = np.where(STORE_KEYS[:, None] == STORE_KEYS[None, :], 0.9, 0.3)
STORE_SIMILARITY[4, :2] = 0.95


ASKING_ROWS = [0, 4]  # the lines of STORE_KEYS whose message asks to recall


def asking_lines():
    """STORE_KEYS as memory lines: rows ASKING_ROWS ask "기억나?", the rest just talk."""
    return pd.DataFrame({"key": list(STORE_KEYS),
                         "message": ["기억나?" if i in ASKING_ROWS else "그냥 말" for i in range(len(STORE_KEYS))]})


def test_every_other_simulated_store_holds_a_memory_of_the_message_s_key():
    stores = memory_study.simulated_stores(STORE_SIMILARITY, STORE_KEYS, store_size=3, draws=10)
    assert len(stores) == 6 * 10 and stores.groupby("message")["holds_key"].sum().eq(5).all()
    clean = stores[stores["message"] != 4]
    # without its key a store's best is a wrong key (0.3); with it, the memory of its key (0.9)
    assert (clean["best_right"] == clean["holds_key"]).all()
    assert (clean.loc[clean["holds_key"], "best_score"] == 0.9).all()


def test_the_chat_decision_brings_in_the_best_stored_memory_at_or_above_the_threshold():
    stores = memory_study.simulated_stores(STORE_SIMILARITY, STORE_KEYS, store_size=3, draws=10)
    point = memory_study.store_point(stores, 0.5)
    # brought in: the 25 key-holding stores of messages 0-3 and 5 (right), and message 4's stores with an a
    # (wrong, 0.95) or else with its c (right, 0.9)
    message_4 = stores[stores["message"] == 4]
    wrong, right = int((message_4["best_score"] == 0.95).sum()), int(message_4["best_right"].sum())
    assert wrong > 0 and (point.retrieved, point.correct) == (25 + wrong + right, 25 + right)
    assert point.recall == pytest.approx(point.correct / 30)
    assert memory_study.store_point(stores, 0.92).correct == 0
    nothing = memory_study.store_point(stores, 0.99)
    assert nothing.retrieved == 0 and np.isnan(nothing.precision) and nothing.recall == 0.0


def test_the_sweep_covers_the_grid_and_auto_picks_its_best_f_beta():
    sweep = memory_study.threshold_sweep(STORE_SIMILARITY, STORE_KEYS)
    assert len(sweep) == len(memory_study.THRESHOLD_GRID)
    assert sweep["recall"].is_monotonic_decreasing
    choice = memory_study.choose_threshold(STORE_SIMILARITY, STORE_KEYS, "auto")
    # every threshold in (0.3, 0.9] brings in exactly the right memories plus message 4's wrong a's:
    # the highest of them wins the tie
    assert choice["threshold"] == 0.9 and choice["store_size"] == memory_study.STORE_SIZE
    assert sweep.set_index("threshold").loc[0.9, "f_beta"] == pytest.approx(sweep["f_beta"].max())
    assert sweep.set_index("threshold").loc[0.91, "f_beta"] < sweep["f_beta"].max()


def test_the_choice_names_its_split_and_reports_the_test_split_at_the_same_threshold():
    test = (STORE_SIMILARITY[:4, :4], STORE_KEYS[:4])
    choice = memory_study.choose_threshold(STORE_SIMILARITY, STORE_KEYS, "auto", test=test)
    assert choice["split"] == "valid" and "stores of the valid split" in choice["how"]
    # keys a and b only: at 0.9 every memory brought in is right and every key-holding store brings its own in
    assert (choice["test_precision"], choice["test_recall"]) == (1.0, 1.0)


def test_a_given_threshold_is_used_as_is_and_nonsense_is_refused():
    given = memory_study.choose_threshold(STORE_SIMILARITY, STORE_KEYS, "0.55")
    assert given["threshold"] == 0.55 and given["how"] == "given by the user"
    for bad in ("high", "nan", ""):
        with pytest.raises(OhloraError, match="threshold"):
            memory_study.choose_threshold(SIMILARITY, KEYS, bad)


def test_a_mask_of_messages_simulates_only_those_rows_in_stores_of_every_line():
    asking = np.zeros(len(STORE_KEYS), bool)
    asking[ASKING_ROWS] = True
    stores = memory_study.simulated_stores(STORE_SIMILARITY, STORE_KEYS, messages=asking)
    assert sorted(set(stores["message"])) == ASKING_ROWS and len(stores) == 2 * memory_study.STORE_DRAWS
    whole = memory_study.simulated_stores(STORE_SIMILARITY, STORE_KEYS)
    assert len(whole) == len(STORE_KEYS) * memory_study.STORE_DRAWS
    choice = memory_study.choose_threshold(STORE_SIMILARITY, STORE_KEYS, "auto", messages=asking)
    assert choice["messages"] == 2 and choice["stores"] == 2 * memory_study.STORE_DRAWS
    with pytest.raises(OhloraError, match="no valid message"):
        memory_study.choose_threshold(STORE_SIMILARITY, STORE_KEYS, "auto", messages=np.zeros(len(STORE_KEYS), bool))


def test_the_asked_threshold_is_chosen_on_the_messages_that_ask_to_recall():
    lines = asking_lines()
    asked = memory_study.choose_asked_threshold(STORE_SIMILARITY, lines, test=(STORE_SIMILARITY, lines))
    mask = np.isin(np.arange(len(STORE_KEYS)), ASKING_ROWS)
    same = memory_study.choose_threshold(STORE_SIMILARITY, STORE_KEYS, "auto", messages=mask,
                                         beta=memory_study.ASKED_THRESHOLD_BETA)
    assert asked["threshold"] == same["threshold"] and asked["messages"] == 2
    assert "ask to recall" in asked["how"] and {"test_precision", "test_recall"} <= set(asked)


def test_asked_to_recall_a_missed_memory_weighs_as_much_as_a_wrong_one():
    # every other message keeps F0.5 (a wrong memory hurts more); an asking message is chosen by F1
    assert memory_study.THRESHOLD_BETA == 0.5 and memory_study.ASKED_THRESHOLD_BETA == 1.0
    sweep = memory_study.threshold_sweep(STORE_SIMILARITY, STORE_KEYS, beta=1.0).query("recall > 0")
    precision, recall = sweep["precision"], sweep["recall"]
    assert np.allclose(sweep["f_beta"], 2 * precision * recall / (precision + recall))
    lines = asking_lines()
    assert "max F1 " in memory_study.choose_asked_threshold(STORE_SIMILARITY, lines)["how"]
    assert "max F0.5 " in memory_study.choose_threshold(STORE_SIMILARITY, STORE_KEYS)["how"]


def test_the_asked_threshold_is_never_above_the_threshold_of_every_other_message():
    lines = asking_lines()
    free = memory_study.choose_asked_threshold(STORE_SIMILARITY, lines)
    assert memory_study.choose_asked_threshold(STORE_SIMILARITY, lines, at_most=free["threshold"] + 0.05) == free
    lowered = memory_study.choose_asked_threshold(STORE_SIMILARITY, lines, test=(STORE_SIMILARITY, lines),
                                                  at_most=free["threshold"] - 0.1)
    assert lowered["threshold"] == pytest.approx(free["threshold"] - 0.1) and lowered["messages"] == 2
    assert "lowered" in lowered["how"] and {"test_precision", "test_recall"} <= set(lowered)


def test_save_threshold_writes_the_asked_threshold_beside_the_other(tmp_path):
    memory_study.save_threshold(tmp_path, {"threshold": 0.9, "how": "x"}, {"threshold": 0.8, "how": "y"})
    saved = json.loads((tmp_path / memory.THRESHOLD_FILE).read_text(encoding="utf-8"))
    assert saved["threshold"] == 0.9 and saved[memory.ASKED_THRESHOLD_KEY] == 0.8 and saved["asked"]["how"] == "y"


# --- a tiny training run end to end (tiny profile: scores are noise, mechanics are real) ---------------

def test_run_trains_evaluates_and_saves_the_threshold_next_to_the_model(memory_trained):
    out, result = memory_trained
    assert {"train_loss", "valid_loss", "valid_pearson"} <= set(result["history"].columns)
    assert list(result["steps"]["step"]) == [1, 2, 3] and (result["steps"]["train_loss"] > 0).all()
    assert (out / memory_study.STEP_LOG).is_file()
    from sentence_transformers.sentence_transformer import losses
    assert losses.CosineSimilarityLoss.__module__.startswith("sentence_transformers")  # the stock class is back
    assert set(result["test"]) == {"mse", "mae", "pearson"}
    lines = memory_study.split_lines(load_memory())
    assert result["top1"]["total"] == len(lines["test"])
    saved = json.loads((out / memory.THRESHOLD_FILE).read_text(encoding="utf-8"))
    assert saved["threshold"] == 0.5 and saved["how"] == "given by the user"
    assert saved[memory.ASKED_THRESHOLD_KEY] == 0.5 and saved["asked"]["messages"] > 0   # a given one holds for all
    assert {"test_precision", "test_recall"} <= set(saved)
    meta = json.loads((out / "ohlora-sbert.json").read_text(encoding="utf-8"))
    assert meta["task"] == "memory" and meta["train_lines"] == len(lines["train"]) and meta["config"]["in_batch"]


# --- the yardstick's asked turns ----------------------------------------------------------------------

def test_asked_turns_hold_every_fact_stated_before_the_question():
    from ohlora_utils.eval_data import Conversation, Fact, Turn

    job, cat = Fact(("직업",), "간호사", ("간호사",)), Fact(("반려동물",), "고양이 나비", ("나비",))
    chat = Conversation("c", "t", (Turn("나 간호사야", save=job), Turn("고양이 나비 키워", save=cat),
                                   Turn("내 직업 기억나?", recall=0), Turn("나중에 물어볼 거", save=Fact(("목표",), "x", ("x",)))))
    asked = memory_study.asked_turns([chat])
    assert asked.to_dict("records") == [{"conversation": "c", "turn": 2, "question": "내 직업 기억나?",
                                         "items": ["[직업: 간호사]", "[반려동물: 고양이 나비]"], "expected": "[직업: 간호사]"}]


def test_asked_retrieval_says_whether_the_asked_item_came_first_and_reached_the_threshold():
    class Retriever(memory.MemoryRetriever):  # scores an item by how many of its characters the question shares
        def __init__(self):
            super().__init__(None, {}, threshold=2.5)

        def scores(self, question, items):
            return [float(len(set(question) & set(item))) for item in items]

    asked = pd.DataFrame({"question": ["직업뭐", "고양이", "나비"], "items": [["[직업: 간호사]", "[취미: 뜨개질]"]] * 3,
                          "expected": ["[직업: 간호사]", "[직업: 간호사]", "[취미: 뜨개질]"]})
    table = memory_study.asked_retrieval(Retriever(), asked)
    assert table["best"].tolist()[0] == "[직업: 간호사]" and table["score"].tolist()[0] == 2.0
    assert table["first"].tolist() == [True, True, False]   # 고양이 / 나비: ties → the first item
    assert table["brought_back"].tolist() == [False, False, False] and table["threshold"].tolist() == [2.5] * 3
    assert memory_study.asked_retrieval(Retriever(), asked, threshold=2.0)["brought_back"].tolist() == [True, False, False]


def test_asked_retrieval_applies_the_asked_threshold_to_questions_that_ask_to_recall():
    class Retriever(memory.MemoryRetriever):
        def __init__(self):
            super().__init__(None, {}, threshold=3.5, asked_threshold=2.0)

        def scores(self, question, items):
            return [float(len(set(question) & set(item))) for item in items]

    asked = pd.DataFrame({"question": ["직업 기억해?", "직업 말해봐"], "items": [["[직업: 간호사]", "[취미: 뜨개질]"]] * 2,
                          "expected": ["[직업: 간호사]"] * 2})
    table = memory_study.asked_retrieval(Retriever(), asked)
    assert table["threshold"].tolist() == [2.0, 3.5] and table["first"].all()
    assert table["asks"].tolist() == [True, False]
    assert table["brought_back"].tolist() == [True, False]   # both score 3: only the asking one reaches its threshold
    one_threshold = memory_study.asked_retrieval(Retriever(), asked, threshold=3.5)
    assert one_threshold["asks"].tolist() == [True, False]    # still said when one threshold holds for all


def test_the_committed_asked_turns_name_items_of_facts_stated_earlier():
    from ohlora_utils.eval_data import load_conversations

    asked = memory_study.asked_turns(load_conversations())
    assert len(asked) >= 50
    assert all(expected in items for expected, items in zip(asked["expected"], asked["items"]))


def test_the_comparison_table_puts_the_original_top1_beside_each_models(tmp_path):
    metrics = {"mse": 0.01234, "mae": 0.1, "pearson": 0.9}
    table = memory_study.comparison_table({
        "original": (memory_study.ORIGINAL_TEST_METRICS, None),
        "trained": (metrics, {"right_key": 50, "own_item": 30, "total": 60}),
    })
    right, total = memory_study.ORIGINAL_TOP1
    assert table.loc["top-1 right key"].tolist() == [f"{right}/{total}", "50/60"]
    assert table.loc["top-1 own item", "trained"] == "30/60" and table.loc["mse", "trained"] == "0.0123"


def test_the_store_demo_shows_replacing_and_the_calendar_against_the_original(tmp_path):
    from datetime import datetime

    items = ["[좋아하는 음식: 떡볶이]", "[내일 일정: 치과]", "[좋아하는 음식: 마라탕]"]
    stores, lines = memory_study.store_policy_demo(items, tmp_path, datetime(2025, 6, 2, 21, 0), hours_later=11)
    assert stores["this study"].items() == ["[오늘 일정: 치과]", "[좋아하는 음식: 마라탕]"]
    assert len(stores["original"].items()) == 3
    assert "  Mon add [좋아하는 음식: 마라탕]     → replaced (was [좋아하는 음식: 떡볶이])" in lines
    assert lines[-1].startswith("  Tue held:")


def test_grouping_by_text_is_refused_for_memory_pairs(tiny_profile, tmp_path):
    from ohlora_utils.memory_study import train_memory_sbert

    config = SbertTrainConfig(epochs=1, max_steps=1, group_by_text=True)
    with pytest.raises(OhloraError, match="group_by_text is for the ethics classifier"):
        train_memory_sbert(None, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), config, tiny_profile, tmp_path / "m")


def write_reader_folder(folder, picks: dict[str, list[str]]):
    """A three-message sheet: Q1 wants M1 (key 음식), Q2 wants M2 (음식), Q3 wants M3 (직업)."""
    pd.DataFrame({"message_id": ["Q1", "Q2", "Q3"], "message": ["떡볶이 땡겨", "점심 뭐 먹지", "출근하기 싫다"]}
                 ).to_csv(folder / "sheet_messages.csv", index=False)
    pd.DataFrame({"memory_id": ["M1", "M2", "M3"], "memory": ["[음식: 떡볶이]", "[음식: 라면]", "[직업: 간호사]"]}
                 ).to_csv(folder / "sheet_memories.csv", index=False)
    pd.DataFrame({"message_id": ["Q1", "Q2", "Q3"], "key": ["음식", "음식", "직업"], "memory_id": ["M1", "M2", "M3"]}
                 ).to_csv(folder / "key.csv", index=False)
    for reader, memory_ids in picks.items():
        pd.DataFrame({"message_id": ["Q1", "Q2", "Q3"][:len(memory_ids)], "memory_id": memory_ids}
                     ).to_csv(folder / f"picks_{reader}.csv", index=False)
    return pd.DataFrame({"key": ["음식", "음식", "직업"], "message": ["떡볶이 땡겨", "점심 뭐 먹지", "출근하기 싫다"],
                         "memory": ["[음식: 떡볶이]", "[음식: 라면]", "[직업: 간호사]"]})


def test_readers_picks_count_as_the_models_top1_counts(tmp_path):
    lines = write_reader_folder(tmp_path, {"x": ["M2", "M2", "M3"], "y": ["M1", "M2", "M1"]})
    table = memory_study.reader_top1(tmp_path, lines=lines).set_index("reader")
    # x: Q1 got another memory of its key (right key, not its own line), and used only two memories
    assert table.loc["x"].to_dict() == {"right_key": 3, "own_item": 2, "total": 3, "memories_used": 2}
    assert table.loc["y"].to_dict() == {"right_key": 2, "own_item": 2, "total": 3, "memories_used": 2}


def test_a_reader_sheet_that_no_longer_holds_the_test_lines_is_refused(tmp_path):
    lines = write_reader_folder(tmp_path, {"x": ["M1", "M2", "M3"]})
    with pytest.raises(OhloraError, match="does not hold the memory data's test lines"):
        memory_study.reader_top1(tmp_path, lines=lines.assign(message=["다른 말", "점심 뭐 먹지", "출근하기 싫다"]))


def test_a_reader_who_skipped_a_message_is_named(tmp_path):
    lines = write_reader_folder(tmp_path, {"lazy": ["M1", "M2"]})
    with pytest.raises(OhloraError, match="picks_lazy.csv: expected one pick for each of the 3 messages"):
        memory_study.reader_top1(tmp_path, lines=lines)


def test_the_committed_reader_check_is_drawn_from_the_current_test_split():
    table = memory_study.reader_top1()
    assert len(table) >= 1 and (table["total"] == len(memory_study.split_lines(load_memory())["test"])).all()
