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
