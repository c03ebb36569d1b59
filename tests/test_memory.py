"""Memory retrieval in a chat turn: the retriever scores items, uses the saved threshold, refuses bad input."""
import numpy as np
import pytest

from ohlora_utils import memory
from ohlora_utils.errors import OhloraError


def test_retriever_scores_each_item_and_uses_the_saved_threshold(memory_trained):
    retriever = memory.load_retriever(memory_trained[0])
    assert retriever.threshold == 0.5
    items = ["[좋아하는 음식: 떡볶이]", "[내일 일정: 치과]", "[취미: 등산]"]
    scores = retriever.scores("로라야 점심 뭐 먹지?", items)
    encode = lambda texts, prefix: retriever.model.encode([prefix + t for t in texts], normalize_embeddings=True)
    cosines = encode(["로라야 점심 뭐 먹지?"], retriever.meta.get("query_prefix", "")) @ \
        encode(items, retriever.meta.get("passage_prefix", "")).T
    assert scores == pytest.approx(cosines[0].tolist(), abs=1e-5)   # message (query) with each item (passage)
    item, score = retriever.best("로라야 점심 뭐 먹지?", items, threshold=-1.0)
    assert item == items[int(np.argmax(scores))] and score == pytest.approx(max(scores))
    assert retriever.best("로라야 점심 뭐 먹지?", items, threshold=1.01) == (None, pytest.approx(max(scores)))


def test_retriever_bad_input_is_a_clear_error_or_an_empty_result(memory_trained):
    retriever = memory.load_retriever(memory_trained[0])
    for query in ("", "   \n", None):
        with pytest.raises(OhloraError, match="query is empty"):
            retriever.scores(query, ["[취미: 등산]"])
    with pytest.raises(OhloraError, match="not a \\[key: value\\].*#1 '등산 좋아함'"):
        retriever.best("주말에 뭐 하지", ["[취미: 등산]", "등산 좋아함"])
    assert retriever.scores("주말에 뭐 하지", []) == []
    assert retriever.best("주말에 뭐 하지", []) == (None, 0.0)


def test_a_model_without_a_threshold_needs_one_passed(memory_trained, tmp_path):
    retriever = memory.load_retriever(memory_trained[0])
    retriever.threshold = None
    with pytest.raises(OhloraError, match="no chosen threshold"):
        retriever.best("주말에 뭐 하지", ["[취미: 등산]"])
    assert retriever.best("주말에 뭐 하지", ["[취미: 등산]"], threshold=-1.0)[0] == "[취미: 등산]"
    with pytest.raises(OhloraError, match="no trained S-BERT model"):
        memory.load_retriever(tmp_path / "nothing")


def test_messages_that_ask_to_recall_are_told_from_ordinary_ones():
    for asking in ("내 고향 어디라고 했지?", "우리 강아지 이름 기억나?", "내가 뭐 싫어한다고 했더라", "내 직업 뭐게 ㅋㅋ",
                   "내가 어제 얘기한 거 알지?", "맞춰봐 내가 제일 좋아하는 과일", "제가 어디서 일한다고 말씀드렸었죠?"):
        assert memory.asks_to_recall(asking), asking
    for telling in ("나 오늘 떡볶이 먹었어", "어제 운동했지만 하나도 안 힘들었어", "로라야 점심 뭐 먹지?", "ㅇㅇ", "안녕 로라",
                    "엄마한테 용돈 드렸어", "나도 알지만 잘 안 돼"):
        assert not memory.asks_to_recall(telling), telling


def test_a_message_that_asks_to_recall_meets_the_asked_threshold_when_one_was_chosen(memory_trained):
    retriever = memory.load_retriever(memory_trained[0])
    assert retriever.asked_threshold == retriever.threshold == 0.5    # a threshold given by the user holds for all
    retriever.asked_threshold = None                                   # threshold files from before it existed
    assert retriever.threshold_for("내 취미 기억나?") == 0.5
    retriever.asked_threshold = 0.3
    assert retriever.threshold_for("내 취미 기억나?") == 0.3 and retriever.threshold_for("주말에 뭐 하지") == 0.5
    items = ["[취미: 등산]", "[직업: 간호사]"]
    score = max(retriever.scores("내 취미 기억나?", items))
    retriever.threshold, retriever.asked_threshold = score + 0.01, score - 0.01
    assert retriever.best("내 취미 기억나?", items)[0] is not None
    retriever.asked_threshold = score + 0.01
    assert retriever.best("내 취미 기억나?", items)[0] is None


def test_the_asked_threshold_is_read_from_the_threshold_file(memory_trained, tmp_path):
    import json
    import shutil

    folder = shutil.copytree(memory_trained[0], tmp_path / "sbert_memory")
    saved = json.loads((folder / memory.THRESHOLD_FILE).read_text(encoding="utf-8"))
    (folder / memory.THRESHOLD_FILE).write_text(json.dumps(saved | {memory.ASKED_THRESHOLD_KEY: 0.42}), encoding="utf-8")
    assert memory.load_retriever(folder).asked_threshold == 0.42
    (folder / memory.THRESHOLD_FILE).write_text(json.dumps(saved | {memory.ASKED_THRESHOLD_KEY: "high"}), encoding="utf-8")
    with pytest.raises(OhloraError, match="unreadable"):
        memory.load_retriever(folder)
