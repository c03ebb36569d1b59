"""Shared S-BERT training: pairs in, a saved model with its prefixes and an epoch log out; reuse when unchanged."""
import numpy as np
import pandas as pd
import pytest

from ohlora_utils.errors import OhloraError
from ohlora_utils.models import load_sbert_base
from ohlora_utils.sbert import load_trained_sbert, pair_cosines
from ohlora_utils.sbert_training import (CosineInBatchLoss, SbertTrainConfig, all_pairs, pair_metrics, pairs_frame,
                                        train_cosine_in_batch, train_cosine_pairs, train_cosine_to_names)


def test_pair_metrics_match_hand_computation():
    metrics = pair_metrics(np.array([0.0, 0.5, 1.0]), np.array([0.0, 1.0, 1.0]))
    assert metrics["mse"] == pytest.approx(0.25 / 3)
    assert metrics["mae"] == pytest.approx(0.5 / 3)
    assert metrics["pearson"] == pytest.approx(np.corrcoef([0, 0.5, 1], [0, 1, 1])[0, 1])


def test_training_moves_pairs_towards_their_labels_and_saves(tiny_profile, tmp_path):
    model = load_sbert_base(tiny_profile)
    a = ["오늘 점심 뭐 먹지", "내일 면접이야", "고양이가 아파", "노래 추천해 줘"] * 4
    b = ["[좋아하는 음식: 떡볶이]", "[내일 일정: 면접]", "[반려동물: 고양이]", "[좋아하는 가수: 아이유]"] * 4
    labels = [1.0, 1.0, 0.0, 0.0] * 4
    pairs = pairs_frame(a, b, labels)
    before = pair_metrics(pair_cosines(model, {}, a, b), np.array(labels))["mse"]
    config = SbertTrainConfig(epochs=3, batch_size=4, learning_rate=1e-3, freeze_word_embeddings=False)
    history = train_cosine_pairs(model, pairs, pairs, config, tiny_profile, tmp_path / "sbert", {"task": "test"})
    assert list(history["epoch"]) == [1.0, 2.0, 3.0]
    assert {"train_loss", "valid_loss", "valid_pearson"} <= set(history.columns)
    loaded, meta = load_trained_sbert(tmp_path / "sbert")
    assert meta["task"] == "test" and meta["profile"] == "tiny"
    after = pair_metrics(pair_cosines(loaded, meta, a, b), np.array(labels))["mse"]
    assert after < before
    assert not (tmp_path / "sbert" / "checkpoints").exists()


def test_frozen_word_embeddings_do_not_change(tiny_profile, tmp_path):
    model = load_sbert_base(tiny_profile)
    words = model[0].auto_model.get_input_embeddings().weight.detach().clone()
    pairs = pairs_frame(["안녕", "잘 자"], ["[상태: 졸림]", "[상태: 배고픔]"], [1.0, 0.0])
    train_cosine_pairs(model, pairs, pairs, SbertTrainConfig(epochs=1, batch_size=2, learning_rate=1e-2),
                       tiny_profile, tmp_path / "m")
    assert model[0].auto_model.get_input_embeddings().weight.detach().equal(words)


def test_empty_pairs_are_a_clear_error(tiny_profile, tmp_path):
    empty = pairs_frame([], [], [])
    with pytest.raises(OhloraError, match="non-empty"):
        train_cosine_pairs(load_sbert_base(tiny_profile), empty, empty, SbertTrainConfig(), tiny_profile, tmp_path / "x")


def test_unchanged_pairs_reuse_the_saved_model_and_changed_pairs_retrain(tiny_profile, tmp_path, capsys):
    pairs = pairs_frame(["안녕", "잘 자", "배고파"], ["[상태: 반가움]", "[상태: 졸림]", "[상태: 배고픔]"], [1.0, 0.0, 1.0])
    config = SbertTrainConfig(epochs=1, batch_size=2, learning_rate=1e-2, freeze_word_embeddings=False)
    trained = load_sbert_base(tiny_profile)
    first = train_cosine_pairs(trained, pairs, pairs, config, tiny_profile, tmp_path / "m")
    capsys.readouterr()
    fresh = load_sbert_base(tiny_profile)
    again = train_cosine_pairs(fresh, pairs, pairs, config, tiny_profile, tmp_path / "m")
    assert "reused" in capsys.readouterr().out and again.equals(first)
    for name, weight in trained.state_dict().items():  # the caller's object now holds the trained weights
        assert fresh.state_dict()[name].equal(weight), name
    relabelled = pairs.assign(label=[0.0, 1.0, 1.0])
    train_cosine_pairs(load_sbert_base(tiny_profile), relabelled, relabelled, config, tiny_profile, tmp_path / "m")
    assert "training m (changed since: inputs.pairs_sha256)" in capsys.readouterr().out


NAMES = ["음식", "일정", "반려동물"]
TEXTS = ["떡볶이 먹고 싶다", "내일 면접 있어", "우리 고양이 귀여워", "라면 끓일까", "모레 시험이야", "강아지 산책 중"]
TARGETS = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)


def test_grouped_training_learns_the_same_pairs_each_text_against_every_name(tiny_profile, tmp_path):
    model = load_sbert_base(tiny_profile)
    pair_texts, pair_names = [t for t in TEXTS for _ in NAMES], NAMES * len(TEXTS)
    before = pair_metrics(pair_cosines(model, {}, pair_texts, pair_names), TARGETS.reshape(-1))["mse"]
    config = SbertTrainConfig(epochs=3, batch_size=3, learning_rate=1e-3, freeze_word_embeddings=False)
    history = train_cosine_to_names(model, TEXTS, TARGETS, TEXTS, TARGETS, NAMES, config, tiny_profile,
                                    tmp_path / "g", {"task": "test"})
    assert list(history["epoch"]) == [1.0, 2.0, 3.0]
    assert {"train_loss", "valid_loss", "valid_pearson"} <= set(history.columns)
    loaded, meta = load_trained_sbert(tmp_path / "g")
    after = pair_metrics(pair_cosines(loaded, meta, pair_texts, pair_names), TARGETS.reshape(-1))["mse"]
    assert after < before
    # the validation loss is the pairs' mean squared error: recompute it from the saved model
    assert history["valid_loss"].iloc[-1] == pytest.approx(after, rel=0.05, abs=1e-3)


def test_grouped_training_rejects_labels_that_do_not_match_texts_and_names(tiny_profile, tmp_path):
    with pytest.raises(OhloraError, match="labels of shape"):
        train_cosine_to_names(load_sbert_base(tiny_profile), TEXTS, TARGETS[:, :2], TEXTS, TARGETS, NAMES,
                              SbertTrainConfig(epochs=1), tiny_profile, tmp_path / "x")
    with pytest.raises(OhloraError, match="non-empty"):
        train_cosine_to_names(load_sbert_base(tiny_profile), [], np.zeros((0, 3)), TEXTS, TARGETS, NAMES,
                              SbertTrainConfig(epochs=1), tiny_profile, tmp_path / "x")


def test_grouped_training_reuses_an_unchanged_model_and_retrains_on_new_labels(tiny_profile, tmp_path, capsys):
    config = SbertTrainConfig(epochs=1, batch_size=3, learning_rate=1e-2)
    first = train_cosine_to_names(load_sbert_base(tiny_profile), TEXTS, TARGETS, TEXTS, TARGETS, NAMES, config,
                                  tiny_profile, tmp_path / "g")
    capsys.readouterr()
    again = train_cosine_to_names(load_sbert_base(tiny_profile), TEXTS, TARGETS, TEXTS, TARGETS, NAMES, config,
                                  tiny_profile, tmp_path / "g")
    assert "reused" in capsys.readouterr().out and again.equals(first)
    train_cosine_to_names(load_sbert_base(tiny_profile), TEXTS, TARGETS[::-1].copy(), TEXTS, TARGETS, NAMES, config,
                          tiny_profile, tmp_path / "g")
    assert "changed since: inputs.pairs_sha256" in capsys.readouterr().out



# --- in-batch training: every pair among a batch of lines ------------------------------------------------

LINES = pd.DataFrame({"a": ["떡볶이 먹고 싶다", "내일 면접 있어", "우리 고양이 귀여워", "라면 끓일까", "모레 시험이야", "강아지 산책 중"],
                      "b": ["[좋아하는 음식: 떡볶이]", "[내일 일정: 면접]", "[반려동물: 고양이]", "[좋아하는 음식: 라면]",
                            "[내일 일정: 시험]", "[반려동물: 강아지]"],
                      "group": [0, 1, 2, 0, 1, 2]})
GROUP_LABELS = np.array([[1.0, 0.2, 0.0], [0.2, 1.0, 0.0], [0.0, 0.0, 1.0]])


def test_every_pair_of_the_lines_gets_its_groups_label():
    pairs = all_pairs(LINES, GROUP_LABELS)
    assert len(pairs) == 36
    row = pairs[(pairs["a"] == "라면 끓일까") & (pairs["b"] == "[내일 일정: 시험]")].iloc[0]
    assert row["label"] == pytest.approx(0.2)
    assert (pairs.loc[pairs["a"] == "떡볶이 먹고 싶다", "label"].tolist()
            == pytest.approx([1.0, 0.2, 0.0, 1.0, 0.2, 0.0]))


class Embedder:
    """A stand-in S-BERT: each sentence_features batch carries its embeddings directly."""

    def __call__(self, features):
        return {"sentence_embedding": features["vectors"]}


def test_the_in_batch_loss_is_the_squared_error_of_every_pair_or_its_ranking():
    import torch

    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    groups = torch.tensor([0, 2])
    cosines = torch.tensor([[1.0, 2 ** -0.5], [0.0, 2 ** -0.5]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    mse = CosineInBatchLoss(Embedder(), GROUP_LABELS)([{"vectors": a}, {"vectors": b}], groups)
    assert float(mse) == pytest.approx(float(((cosines - targets) ** 2).mean()), abs=1e-6)
    cosent = CosineInBatchLoss(Embedder(), GROUP_LABELS, "cosent")
    wrong = cosent([{"vectors": a}, {"vectors": b}], groups)
    right = cosent([{"vectors": a}, {"vectors": a}], groups)   # both own pairs at 1, the others at 0: in order
    assert float(right) < float(wrong)
    with pytest.raises(OhloraError, match="unknown pair loss"):
        CosineInBatchLoss(Embedder(), GROUP_LABELS, "hinge")


def test_in_batch_training_moves_the_pairs_towards_their_labels(tiny_profile, tmp_path):
    model = load_sbert_base(tiny_profile)
    pairs = all_pairs(LINES, GROUP_LABELS)
    before = pair_metrics(pair_cosines(model, {}, pairs["a"], pairs["b"]), pairs["label"].to_numpy())["mse"]
    config = SbertTrainConfig(epochs=3, batch_size=3, learning_rate=1e-3, freeze_word_embeddings=False, in_batch=True)
    history = train_cosine_in_batch(model, LINES, LINES, GROUP_LABELS, config, tiny_profile, tmp_path / "b",
                                    {"task": "test"})
    assert list(history["epoch"]) == [1.0, 2.0, 3.0]
    loaded, meta = load_trained_sbert(tmp_path / "b")
    after = pair_metrics(pair_cosines(loaded, meta, pairs["a"], pairs["b"]), pairs["label"].to_numpy())["mse"]
    assert after < before and meta["task"] == "test"


def test_in_batch_lines_outside_the_label_matrix_are_refused(tiny_profile, tmp_path):
    with pytest.raises(OhloraError, match="outside the 3 groups"):
        train_cosine_in_batch(load_sbert_base(tiny_profile), LINES.assign(group=[0, 1, 2, 0, 1, 3]), LINES,
                              GROUP_LABELS, SbertTrainConfig(epochs=1), tiny_profile, tmp_path / "x")


def test_grouped_training_has_only_the_cosine_loss(tiny_profile, tmp_path):
    with pytest.raises(OhloraError, match="one loss"):
        train_cosine_to_names(load_sbert_base(tiny_profile), TEXTS, TARGETS, TEXTS, TARGETS, NAMES,
                              SbertTrainConfig(epochs=1, loss="cosent"), tiny_profile, tmp_path / "x")
