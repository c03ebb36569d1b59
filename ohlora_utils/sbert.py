"""Train and score Sentence-BERT models on (text, text, similarity) pairs — shared by memory and ethics.

Usage::

    model = load_sbert_base(profile)
    history = train_cosine_pairs(model, train_pairs, valid_pairs, SbertTrainConfig(epochs=2), profile, out_dir)
    model, meta = load_trained_sbert(out_dir); scores = pair_cosines(model, meta, a_texts, b_texts)

Training is CosineSimilarityLoss through ``SentenceTransformerTrainer`` (the legacy ``fit`` leaves a stray
``checkpoints/`` folder), with a validation loss and Pearson correlation every epoch and a progress bar.
A saved model carries ``ohlora-sbert.json`` with the text prefixes its base expects (e5: ``query: ``),
so whoever loads it embeds texts the way it was trained.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .devices import compute_device, trainer_device_args
from .errors import OhloraError
from .profiles import Profile
from .storage import atomic_dir, manifest_problem, write_manifest

SBERT_META = "ohlora-sbert.json"    # prefixes + provenance, next to the saved model
TRAINING_LOG = "training_log.csv"   # one row per epoch: train loss, valid loss, valid Pearson


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


def pairs_frame(a: list[str], b: list[str], label: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"a": a, "b": b, "label": np.asarray(label, dtype=np.float32)})


def _with_prefix(texts, prefix: str) -> list[str]:
    return [prefix + text for text in texts]


def embed(model, texts: list[str], prefix: str = "", batch_size: int = 64) -> np.ndarray:
    """L2-normalised embeddings of ``texts`` (with the model's prefix in front)."""
    return model.encode(_with_prefix(texts, prefix), batch_size=batch_size, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=False)


def pair_cosines(model, meta: dict, a_texts: list[str], b_texts: list[str]) -> np.ndarray:
    """Cosine of each (a, b) pair, row by row."""
    a = embed(model, a_texts, meta.get("query_prefix", ""))
    b = embed(model, b_texts, meta.get("passage_prefix", ""))
    return (a * b).sum(axis=1)


def pair_metrics(predicted: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """MSE, MAE and Pearson correlation of predicted cosines against gold labels (the original's figures)."""
    predicted, gold = np.asarray(predicted, dtype=np.float64), np.asarray(gold, dtype=np.float64)
    pearson = float(np.corrcoef(predicted, gold)[0, 1]) if predicted.std() > 0 and gold.std() > 0 else float("nan")
    return {"mse": float(np.mean((predicted - gold) ** 2)), "mae": float(np.mean(np.abs(predicted - gold))),
            "pearson": pearson}


def _dataset(pairs: pd.DataFrame, profile: Profile):
    from datasets import Dataset

    return Dataset.from_dict({
        "sentence1": _with_prefix(pairs["a"], profile.query_prefix),
        "sentence2": _with_prefix(pairs["b"], profile.passage_prefix),
        "score": pairs["label"].astype(np.float32).tolist(),
    })


def train_cosine_pairs(model, train_pairs: pd.DataFrame, valid_pairs: pd.DataFrame, config: SbertTrainConfig,
                       profile: Profile, out_dir: Path, extra_meta: dict | None = None) -> pd.DataFrame:
    """Fine-tune ``model`` in place on the pairs, save it atomically to ``out_dir``, return the epoch log."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments, losses
    from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator

    if len(train_pairs) == 0 or len(valid_pairs) == 0:
        raise OhloraError("S-BERT training needs non-empty train and validation pairs",
                          fix="check the dataset's split column")
    if config.freeze_word_embeddings:
        model[0].auto_model.get_input_embeddings().weight.requires_grad_(False)
    train_set, valid_set = _dataset(train_pairs, profile), _dataset(valid_pairs, profile)
    evaluator = EmbeddingSimilarityEvaluator(valid_set["sentence1"], valid_set["sentence2"], valid_set["score"],
                                             name="valid", show_progress_bar=False)
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
                                             eval_dataset=valid_set, loss=losses.CosineSimilarityLoss(model),
                                             evaluator=evaluator)
        trainer.train()
        history = _epoch_log(trainer.state.log_history)
    meta = {"query_prefix": profile.query_prefix, "passage_prefix": profile.passage_prefix,
            "profile": profile.name, "base": profile.sbert_base.hub_id or profile.sbert_base.key,
            "config": asdict(config), **(extra_meta or {})}
    with atomic_dir(out_dir) as staging:
        model.save(str(staging))
        (staging / SBERT_META).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
        history.to_csv(staging / TRAINING_LOG, index=False)
        write_manifest(staging, kind="sbert")
    return history


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


def load_trained_sbert(model_dir: Path):
    """``(model, meta)`` for a folder written by ``train_cosine_pairs``; a clear error when absent."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    model_dir = Path(model_dir)
    meta_path = model_dir / SBERT_META
    if not meta_path.is_file():
        raise OhloraError(f"no trained S-BERT model in {model_dir}",
                          fix="run its notebook first (make reproduce), or point to the right folder")
    if problem := manifest_problem(model_dir):
        raise OhloraError(f"the S-BERT model in {model_dir} is damaged: {problem}",
                          fix="delete the folder and train it again (its notebook, or make reproduce)")
    hf_logging.set_verbosity_error()
    try:
        model = SentenceTransformer(str(model_dir), device=compute_device())
    except Exception as cause:  # a damaged file surfaces as any of several library errors
        raise OhloraError(f"the S-BERT model in {model_dir} could not be loaded ({type(cause).__name__}: {cause})",
                          fix="delete the folder and train it again (its notebook, or make reproduce)") from None
    return model, json.loads(meta_path.read_text(encoding="utf-8"))
