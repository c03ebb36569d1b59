"""Train Sentence-BERT models on (text, text, similarity) pairs — shared by memory and ethics (study side).

Usage::

    model = load_sbert_base(profile)
    history = train_cosine_pairs(model, train_pairs, valid_pairs, SbertTrainConfig(epochs=2), profile, out_dir)
    history = train_cosine_to_names(model, train_texts, train_labels, valid_texts, valid_labels, names, ...)
    history = train_cosine_in_batch(model, train_lines, valid_lines, group_labels, config, profile, out_dir)
    model, meta = load_trained_sbert(out_dir)        # chat time: ohlora_utils.sbert

Training is CosineSimilarityLoss through ``SentenceTransformerTrainer`` (the legacy ``fit`` leaves a stray
``checkpoints/`` folder), with a validation loss and Pearson correlation every epoch and a progress bar.
``train_cosine_to_names`` learns the same pairs when every text is paired with the same few names (the
ethics categories): each text is encoded once per step against all names instead of once per pair, so a
step costs about a quarter as much with four names.
``train_cosine_in_batch`` learns every pair (a_i, b_j) of a set of lines whose label depends only on the
lines' groups (memory: the keys): a step encodes a batch of lines once and learns all pairs among them.
``SbertTrainConfig.loss = "cosent"`` swaps the squared error for the CoSENT ranking loss (tried for memory,
not used by a preset).
The saved folder holds the model, ``ohlora-sbert.json`` (prefixes, config, provenance stamp), the epoch log
and a manifest. A folder trained from the same pairs, settings, base model and code is reused, not retrained.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as functional

from .devices import trainer_device_args
from .errors import OhloraError
from .profiles import Profile
from .provenance import content_sha256, provenance, reusable, why_not_reused
from .sbert import SBERT_META, with_prefix
from .storage import atomic_dir, atomic_write_text, write_manifest

TRAINING_LOG = "training_log.csv"   # one row per epoch: train loss, valid loss, valid Pearson
# the modules whose source decides what the S-BERT learns: a change to one retrains instead of reusing
TRAINING_CODE = ["ohlora_utils.sbert_training", "ohlora_utils.sbert", "ohlora_utils.devices", "ohlora_utils.models"]


@dataclass
class SbertTrainConfig:
    epochs: int = 10                     # original: 10 for both memory and ethics
    batch_size: int = 16                 # original: 16
    learning_rate: float = 2e-5          # original (memory): 2e-5
    warmup_ratio: float = 0.0            # share of steps with a rising learning rate (below 1)
    freeze_word_embeddings: bool = True  # e5-small: 0.42 s instead of 0.99 s a step, same accuracy
    max_steps: int = -1                  # > 0 stops early (quick runs)
    bf16: bool = False                   # bf16 autocast where the CPU has it natively (ethics: 1.6× faster steps)
    seed: int = 42                       # data order and initialisation
    group_by_text: bool = False          # ethics: a step is batch_size prompts × all names, not batch_size pairs
    loss: str = "cosine"                 # "cosine": MSE of cos to the label (original); "cosent": order pairs by label
    in_batch: bool = False               # memory: a step is batch_size lines and all batch_size² pairs among them


def pairs_frame(a: list[str], b: list[str], label: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"a": a, "b": b, "label": np.asarray(label, dtype=np.float32)})


def pair_metrics(predicted: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """MSE, MAE and Pearson correlation of predicted cosines against gold labels (the original's figures)."""
    predicted, gold = np.asarray(predicted, dtype=np.float64), np.asarray(gold, dtype=np.float64)
    pearson = float(np.corrcoef(predicted, gold)[0, 1]) if predicted.std() > 0 and gold.std() > 0 else float("nan")
    return {"mse": float(np.mean((predicted - gold) ** 2)), "mae": float(np.mean(np.abs(predicted - gold))),
            "pearson": pearson}


def _dataset(pairs: pd.DataFrame, profile: Profile):
    from datasets import Dataset

    return Dataset.from_dict({
        "sentence1": with_prefix(pairs["a"], profile.query_prefix),
        "sentence2": with_prefix(pairs["b"], profile.passage_prefix),
        "score": pairs["label"].astype(np.float32).tolist(),
    })


def train_cosine_pairs(model, train_pairs: pd.DataFrame, valid_pairs: pd.DataFrame, config: SbertTrainConfig,
                       profile: Profile, out_dir: Path, extra_meta: dict | None = None) -> pd.DataFrame:
    """Fine-tune ``model`` in place on the pairs, save it atomically to ``out_dir``, return the epoch log.

    When ``out_dir`` already holds a model trained from the same pairs, settings, base model and code (its
    provenance stamp matches), nothing is trained: its weights are loaded into ``model`` and its log returned.
    """
    from sentence_transformers import losses

    _require_rows(train_pairs, valid_pairs)
    pair_losses = {"cosine": lambda: losses.CosineSimilarityLoss(model), "cosent": lambda: losses.CoSENTLoss(model)}
    if config.loss not in pair_losses:
        raise OhloraError(f"unknown pair loss {config.loss!r}", fix=f"use one of {', '.join(pair_losses)}")
    return _fit_and_save(model, _dataset(train_pairs, profile), _dataset(valid_pairs, profile), valid_pairs,
                         pair_losses[config.loss], config, profile, Path(out_dir),
                         {"pairs_sha256": content_sha256([_pair_rows(train_pairs), _pair_rows(valid_pairs)])},
                         extra_meta)


def train_cosine_to_names(model, train_texts: list[str], train_labels: np.ndarray, valid_texts: list[str],
                          valid_labels: np.ndarray, names: list[str], config: SbertTrainConfig, profile: Profile,
                          out_dir: Path, extra_meta: dict | None = None) -> pd.DataFrame:
    """Like ``train_cosine_pairs`` on the pairs (text, name) for every text and every name, with
    ``labels[i, j]`` the target cosine of text ``i`` with ``names[j]`` — the same mean squared error, but a
    batch is ``batch_size`` texts each scored against all names (one encoding per text, not one per pair).
    Validation loss and Pearson correlation are over the same pairs as ``train_cosine_pairs`` would see."""
    if config.loss != "cosine":
        raise OhloraError(f"grouped training has one loss (cosine to each name), not {config.loss!r}",
                          fix='use loss="cosine" with group_by_text')
    train_labels = np.asarray(train_labels, dtype=np.float32)
    valid_labels = np.asarray(valid_labels, dtype=np.float32)
    for texts, labels, split in ((train_texts, train_labels, "train"), (valid_texts, valid_labels, "valid")):
        if labels.shape != (len(texts), len(names)):
            raise OhloraError(f"{split}: labels of shape {labels.shape} for {len(texts)} texts and {len(names)} names",
                              fix="give one row of labels per text and one column per name")
    valid_pairs = _as_pairs(valid_texts, valid_labels, names)
    _require_rows(train_labels, valid_pairs)
    return _fit_and_save(model, _grouped_dataset(train_texts, train_labels, profile),
                         _grouped_dataset(valid_texts, valid_labels, profile), valid_pairs,
                         lambda: CosineToNamesLoss(model, with_prefix(names, profile.passage_prefix)), config,
                         profile, Path(out_dir),
                         {"pairs_sha256": content_sha256([list(train_texts), np.round(train_labels, 6).tolist(),
                                                          list(names), _pair_rows(valid_pairs)]),
                          "grouped_by": "text"},
                         extra_meta)


def train_cosine_in_batch(model, train: pd.DataFrame, valid: pd.DataFrame, group_labels: np.ndarray,
                          config: SbertTrainConfig, profile: Profile, out_dir: Path,
                          extra_meta: dict | None = None) -> pd.DataFrame:
    """Like ``train_cosine_pairs`` on every pair (a_i, b_j) of the lines ``train`` (columns a, b, group), labelled
    ``group_labels[group_i, group_j]`` — but a step encodes ``batch_size`` lines once and learns all
    ``batch_size²`` pairs among them (its own b on the diagonal), instead of one pair per encoded line pair.
    Validation loss is over the valid lines batched the same way; validation Pearson over all their pairs."""
    group_labels = np.asarray(group_labels, dtype=np.float32)
    for name, lines in (("train", train), ("valid", valid)):
        bad = ~lines["group"].between(0, len(group_labels) - 1)
        if bad.any():
            raise OhloraError(f"{name}: group {lines.loc[bad, 'group'].iloc[0]} outside the {len(group_labels)} groups "
                              f"of the label matrix", fix="number the groups 0 … n-1, one row and column each")
    _require_rows(train, valid)
    valid_pairs = all_pairs(valid, group_labels)
    return _fit_and_save(model, _lines_dataset(train, profile), _lines_dataset(valid, profile), valid_pairs,
                         lambda: CosineInBatchLoss(model, group_labels, config.loss), config, profile, Path(out_dir),
                         {"lines_sha256": content_sha256([train["a"].tolist(), train["b"].tolist(),
                                                          train["group"].tolist(), valid["a"].tolist(),
                                                          valid["b"].tolist(), valid["group"].tolist(),
                                                          np.round(group_labels, 6).tolist()]),
                          "grouped_by": "batch"}, extra_meta)


def all_pairs(lines: pd.DataFrame, group_labels: np.ndarray) -> pd.DataFrame:
    """Every pair (a_i, b_j) of ``lines`` as an (a, b, label) frame."""
    i, j = np.meshgrid(np.arange(len(lines)), np.arange(len(lines)), indexing="ij")
    groups = lines["group"].to_numpy()
    return pairs_frame(lines["a"].to_numpy()[i.ravel()].tolist(), lines["b"].to_numpy()[j.ravel()].tolist(),
                       np.asarray(group_labels)[groups[i.ravel()], groups[j.ravel()]])


def _lines_dataset(lines: pd.DataFrame, profile: Profile):
    from datasets import Dataset

    return Dataset.from_dict({"sentence1": with_prefix(lines["a"], profile.query_prefix),
                              "sentence2": with_prefix(lines["b"], profile.passage_prefix),
                              "label": lines["group"].astype(int).tolist()})


class CosineInBatchLoss(torch.nn.Module):
    """For every i, j of the batch, cos(a_i, b_j) against the label ``group_labels[group_i, group_j]`` (the
    batch's labels are the lines' group numbers): ``"cosine"``, their mean squared error; ``"cosent"``, the
    CoSENT ranking loss, which asks only that a pair with a higher label get the higher cosine."""

    COSENT_SCALE = 20.0   # sentence-transformers' default: how sharply a wrongly ordered pair is penalised

    def __init__(self, model, group_labels: np.ndarray, loss: str = "cosine"):
        super().__init__()
        if loss not in ("cosine", "cosent"):
            raise OhloraError(f"unknown pair loss {loss!r}", fix="use cosine or cosent")
        self.model, self.loss = model, loss
        self.group_labels = torch.as_tensor(np.asarray(group_labels), dtype=torch.float32)

    def forward(self, sentence_features, labels):
        a = self.model(sentence_features[0])["sentence_embedding"]
        b = self.model(sentence_features[1])["sentence_embedding"]
        cosines = functional.cosine_similarity(a[:, None, :], b[None, :, :], dim=-1)
        groups = labels.long().to(self.group_labels.device)
        targets = self.group_labels[groups[:, None], groups[None, :]].to(cosines.device)
        if self.loss == "cosine":
            return functional.mse_loss(cosines.float(), targets)
        scores, targets = cosines.float().reshape(-1) * self.COSENT_SCALE, targets.reshape(-1)
        wrong_order = scores[:, None] - scores[None, :]          # s_p − s_q, penalised where label_p < label_q
        wrong_order = wrong_order - (targets[:, None] >= targets[None, :]).float() * 1e12
        return torch.logsumexp(torch.cat([wrong_order.new_zeros(1), wrong_order.reshape(-1)]), dim=0)


class CosineToNamesLoss(torch.nn.Module):
    """Mean squared error between cos(text, name) and its label, for every text of the batch and every name
    (``prefixed_names``: the names as the model reads them); the names are tokenized once and encoded once
    per step (their embeddings change as the model learns)."""

    def __init__(self, model, prefixed_names: list[str]):
        super().__init__()
        self.model, self.names = model, list(prefixed_names)
        self._tokens: dict[torch.device, dict] = {}   # the names' tokens on each device they were needed

    def forward(self, sentence_features, labels):
        texts = self.model(sentence_features[0])["sentence_embedding"]
        if texts.device not in self._tokens:
            self._tokens[texts.device] = {key: value.to(texts.device) if isinstance(value, torch.Tensor) else value
                                          for key, value in self.model.tokenize(self.names).items()}
        names = self.model(dict(self._tokens[texts.device]))
        cosines = functional.cosine_similarity(texts[:, None, :], names["sentence_embedding"][None, :, :], dim=-1)
        return functional.mse_loss(cosines.float(), labels.float())


def pairs_pearson_evaluator(texts_a: list[str], texts_b: list[str], labels: np.ndarray):
    """An evaluator for the trainer: Pearson correlation of cos(a, b) with the labels over the validation pairs
    (logged as ``eval_valid_pearson_cosine``), embedding each distinct text once — the ethics pairs repeat
    every prompt four times and the memory pairs every line many times."""
    from sentence_transformers.evaluation import SentenceEvaluator

    class _Evaluator(SentenceEvaluator):
        def __init__(self):
            super().__init__()
            self.name, self.primary_metric = "valid", "pearson_cosine"

        def __call__(self, model, output_path=None, epoch=-1, steps=-1):
            distinct = sorted(set(texts_a) | set(texts_b))
            vectors = model.encode(distinct, batch_size=64, normalize_embeddings=True, show_progress_bar=False,
                                   convert_to_numpy=True)
            row = {text: i for i, text in enumerate(distinct)}
            cosines = np.einsum("ij,ij->i", vectors[[row[t] for t in texts_a]], vectors[[row[t] for t in texts_b]])
            return self.prefix_name_to_metrics({"pearson_cosine": pair_metrics(cosines, labels)["pearson"]}, self.name)

    return _Evaluator()


def _require_rows(train, valid) -> None:
    if len(train) == 0 or len(valid) == 0:
        raise OhloraError("S-BERT training needs non-empty train and validation pairs",
                          fix="check the dataset's split column")


def _as_pairs(texts: list[str], labels: np.ndarray, names: list[str]) -> pd.DataFrame:
    texts = list(texts)
    return pairs_frame([t for t in texts for _ in names], list(names) * len(texts), np.asarray(labels).reshape(-1))


def _grouped_dataset(texts: list[str], labels: np.ndarray, profile: Profile):
    from datasets import Dataset

    return Dataset.from_dict({"sentence": with_prefix(list(texts), profile.query_prefix),
                              "label": np.asarray(labels, dtype=np.float32).tolist()})


def _fit_and_save(model, train_set, valid_set, valid_pairs: pd.DataFrame, make_loss, config: SbertTrainConfig,
                  profile: Profile, out_dir: Path, data_stamp: dict, extra_meta: dict | None) -> pd.DataFrame:
    """Reuse ``out_dir`` when its provenance matches, else train with the loss ``make_loss()`` and save."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    stamp = provenance({"profile": profile.name, "base": profile.sbert_base.hub_id or profile.sbert_base.key,
                        "prefixes": [profile.query_prefix, profile.passage_prefix], "config": asdict(config),
                        **data_stamp, "meta": extra_meta or {}}, TRAINING_CODE)
    if reusable(out_dir, SBERT_META, stamp):
        print(f"[sbert] reused {out_dir}: trained before from the same pairs, settings, base model and code")
        return _load_into(model, out_dir)
    print(f"[sbert] training {out_dir.name} ({why_not_reused(out_dir, SBERT_META, stamp)})")
    if config.freeze_word_embeddings:
        model[0].auto_model.get_input_embeddings().weight.requires_grad_(False)
    evaluator = pairs_pearson_evaluator(with_prefix(valid_pairs["a"], profile.query_prefix),
                                      with_prefix(valid_pairs["b"], profile.passage_prefix),
                                      valid_pairs["label"].to_numpy(dtype=np.float64))
    with tempfile.TemporaryDirectory(prefix="sbert-trainer-") as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch, num_train_epochs=config.epochs, max_steps=config.max_steps,
            per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=64,
            # transformers 5 reads a float below 1 in warmup_steps as a ratio (warmup_ratio is deprecated)
            learning_rate=config.learning_rate, warmup_steps=config.warmup_ratio, seed=config.seed,
            data_seed=config.seed, eval_strategy="epoch", logging_strategy="epoch", save_strategy="no",
            report_to=[], dataloader_num_workers=0, disable_tqdm=False,
            **trainer_device_args(cpu_bf16=config.bf16),
        )
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train_set,
                                             eval_dataset=valid_set, loss=make_loss(), evaluator=evaluator)
        trainer.train()
        history = _epoch_log(trainer.state.log_history)
    meta = {"query_prefix": profile.query_prefix, "passage_prefix": profile.passage_prefix,
            "profile": profile.name, "base": profile.sbert_base.hub_id or profile.sbert_base.key,
            "config": asdict(config), **(extra_meta or {}), "provenance": stamp}
    with atomic_dir(out_dir) as staging:
        model.save(str(staging))
        atomic_write_text(staging / SBERT_META, json.dumps(meta, ensure_ascii=False, indent=2))
        history.to_csv(staging / TRAINING_LOG, index=False)
        write_manifest(staging, kind="sbert")
    return history


def _pair_rows(pairs: pd.DataFrame) -> list:
    return [pairs["a"].tolist(), pairs["b"].tolist(), [round(float(v), 6) for v in pairs["label"]]]


def _load_into(model, model_dir: Path) -> pd.DataFrame:
    """Copy the saved weights into ``model`` (callers go on using the object they passed); the saved log.

    Only the transformer (module 0, saved at the folder's root) has weights; pooling and normalising have none.
    """
    from safetensors.torch import load_file

    model[0].auto_model.load_state_dict(load_file(model_dir / "model.safetensors"))
    return pd.read_csv(model_dir / TRAINING_LOG)


def _epoch_log(log_history: list[dict]) -> pd.DataFrame:
    rows: dict[float, dict] = {}
    for entry in log_history:
        if "epoch" not in entry:
            continue
        row = rows.setdefault(round(entry["epoch"], 3), {"epoch": round(entry["epoch"], 3)})
        for source, target in (("loss", "train_loss"), ("eval_loss", "valid_loss"),
                               ("eval_valid_pearson_cosine", "valid_pearson")):
            if source in entry:
                row[target] = entry[source]
    return pd.DataFrame(sorted(rows.values(), key=lambda r: r["epoch"]))
