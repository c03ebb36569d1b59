"""The study side of memory retrieval (docs/memory.md): pairs and labels, training, evaluation, the threshold.

Usage::

    labels = key_labels(key_cosines(base_model, profile, lines["key"]))
    history, steps = train_memory_sbert(model, train_lines, valid_lines, labels, config, profile, out)
    choice = choose_threshold(similarity_matrix(model, meta, messages, memories), keys)   # → save_threshold(out, choice)
    asked = choose_asked_threshold(similarity_matrix(model, meta, messages, memories), valid_lines)   # its own

Command line: ``python -m ohlora_utils.memory_study --profile embedded --preset default`` trains, evaluates,
chooses the threshold and saves everything to ``artifacts_dir()/sbert_memory`` (what notebook 03 does).

Pairs: a pair (line i, line j) is (memory of i, message of j), labelled 1.0 when the keys are equal, else
max(2.6·x − 1.6, 0) where x is the *untrained* base model's cosine of the two key strings: related keys
(오늘 일정 / 내일 일정) keep some similarity, unrelated ones little or none. The original trained on every
ordered pair of lines, one pair per encoded (memory, message); with 1,426 lines that is 2,033,476 pairs an
epoch. The CPU presets learn the same pairs in batches of lines (``SbertTrainConfig.in_batch``): a step
encodes 16 lines once and scores all 16 × 16 pairs among them (``sbert_training.train_cosine_in_batch``).

Splits: train lines give the training pairs, valid lines the validation pairs and the threshold, test lines
the reported figures. The threshold is judged the way the chat uses it (``threshold_sweep``): a message meets
a store of a few memories, the best one is brought in if its cosine reaches the threshold; right when it has
the message's key (``simulated_stores``). Messages that ask to recall (``memory.asks_to_recall``) get a
threshold of their own, chosen the same way on those valid messages alone and never above the other one
(``choose_asked_threshold``).
``asked_turns`` and ``asked_retrieval`` measure the retriever on the yardstick's "do you remember …?" turns.
``reader_top1`` scores readers' picks on the test split (``python -m ohlora_utils.memory_study --readers``):
what the split's messages let a reader retrieve, next to the model's top-1.
"""
from __future__ import annotations

import argparse
import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .data import MEMORY_SPLITS
from .errors import OhloraError, exit_on_user_error
from .memory import (ASKED_THRESHOLD_KEY, ORIGINAL_THRESHOLD, THRESHOLD_FILE, asks_to_recall, default_model_dir,
                     similarity_matrix)
from .paths import DATA_DIR
from .presets import get_preset
from .profiles import Profile, get_profile
from .sbert import embed
from .sbert_training import SbertTrainConfig, pair_metrics, pairs_frame, train_cosine_in_batch, train_cosine_pairs
from .storage import atomic_write_text
from .sweeps import Mark, f_beta, precision_recall_panels

STEP_LOG = "step_losses.csv"         # every training step's loss, next to the model
ORIGINAL_TEST_METRICS = {"mse": 0.0355, "mae": 0.128, "pearson": 0.745}  # original, 1,600 test pairs
ORIGINAL_TOP1 = (20, 40)             # original: right memory on top for 20 of 40 test messages
THRESHOLD_GRID = np.round(np.arange(0.0, 1.0001, 0.01), 2)  # thresholds the sweep tries
THRESHOLD_BETA = 0.5                 # F-beta < 1: a wrong memory in the prompt hurts more than a missed one
ASKED_THRESHOLD_BETA = 1.0           # asked to recall, a missed memory fails her answer as a wrong one does
STORE_SIZE = 5                       # memories a simulated chat holds when a message comes (the threshold's criterion)
STORE_DRAWS = 20                     # simulated stores per message, every other one holding a memory of its key
READER_CHECK_DIR = DATA_DIR / "memory" / "reader_check"  # readers' picks on the test split, scored like top-1

# What each preset means for the memory model. e5-small, frozen word embeddings, a step of 16 lines (256 pairs)
# about 0.7 s on 2 CPU cores; an epoch of the 1,426 train lines is 90 steps. The original's recipe (every pair
# one by one, 10 epochs at 2e-5) would take hours on a CPU: it stays the paper preset, for a GPU.
PRESETS: dict[str, SbertTrainConfig] = {
    "quick": SbertTrainConfig(epochs=1, max_steps=30, learning_rate=1e-4, in_batch=True),  # make test
    "default": SbertTrainConfig(epochs=10, learning_rate=1e-4, in_batch=True),            # make reproduce
    "paper": SbertTrainConfig(epochs=10, batch_size=16, learning_rate=2e-5),   # the original
}


def train_config(preset: str = "", epochs: int = 0, batch_size: int = 0, seed: int | None = None) -> SbertTrainConfig:
    """The preset's config with the notebook's overrides (0 keeps the preset's value)."""
    config = PRESETS[get_preset(preset)]
    if epochs < 0 or batch_size < 0:
        raise OhloraError(f"epochs={epochs}, batch_size={batch_size} must be ≥ 0", fix="use 0 for the preset's value")
    if epochs:
        config = replace(config, epochs=epochs, max_steps=-1)  # asking for epochs means whole epochs
    if batch_size:
        config = replace(config, batch_size=batch_size)
    if seed is not None:
        config = replace(config, seed=seed)
    return config


# --- pairs and labels ------------------------------------------------------------------------------

def prefixes(profile: Profile) -> dict[str, str]:
    """The text prefixes a model of ``profile`` embeds with (what a trained model's meta carries)."""
    return {"query_prefix": profile.query_prefix, "passage_prefix": profile.passage_prefix}


def key_label(cosine: float) -> float:
    """docs/memory.md: a different key's cosine x becomes max(2.6·x − 1.6, 0)."""
    return max(2.6 * float(cosine) - 1.6, 0.0)


def key_cosines(base_model, profile: Profile, keys) -> pd.DataFrame:
    """The untrained base model's cosine of every pair of key strings (keys × keys)."""
    keys = sorted(set(keys))
    vectors = embed(base_model, keys, profile.query_prefix)
    return pd.DataFrame(vectors @ vectors.T, index=keys, columns=keys)


def key_labels(cosines: pd.DataFrame) -> pd.DataFrame:
    """Label of every key pair: 1.0 on equal keys, the rescaled base cosine elsewhere."""
    labels = cosines.map(key_label)
    for key in labels.index:
        labels.loc[key, key] = 1.0
    return labels


def build_pairs(lines: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Every ordered pair (i, j) of ``lines`` (key, value, message, memory): (memory of i, message of j, label)."""
    lines = lines.reset_index(drop=True)
    i, j = np.meshgrid(np.arange(len(lines)), np.arange(len(lines)), indexing="ij")
    i, j = i.ravel(), j.ravel()
    rows = _label_rows(lines["key"], labels)   # the keys' row (= column) of the square label table
    return pd.DataFrame({
        "memory": lines["memory"].to_numpy()[i], "message": lines["message"].to_numpy()[j],
        "memory_key": lines["key"].to_numpy()[i], "message_key": lines["key"].to_numpy()[j],
        "label": labels.to_numpy()[rows[i], rows[j]],
    })


def _label_rows(keys, labels: pd.DataFrame) -> np.ndarray:
    """Each key's row of ``labels`` (``key_labels``: same keys on both axes); a key without one is an error."""
    rows = labels.index.get_indexer(keys)
    if (rows < 0).any():
        raise OhloraError(f"no label for keys {sorted(set(np.asarray(keys)[rows < 0]))}",
                          fix="compute key_cosines over the keys of every split")
    return rows


def split_lines(lines: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The memory set's lines by split: ``{"train": …, "valid": …, "test": …}``."""
    return {name: lines[lines["split"] == name] for name in MEMORY_SPLITS}


def as_training_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """The shared trainer's (a, b, label) frame: the message is the query, the memory the passage."""
    return pairs_frame(pairs["message"].tolist(), pairs["memory"].tolist(), pairs["label"].tolist())


def train_memory_sbert(model, train_lines: pd.DataFrame, valid_lines: pd.DataFrame, labels: pd.DataFrame,
                       config: SbertTrainConfig, profile: Profile,
                       out_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fine-tune ``model`` in place on the pairs of the train lines, validate on those of the valid lines
    (``key_labels``), save it to ``out_dir`` (default: artifacts).

    Returns the epoch log (train/valid loss, valid Pearson) and every step's train loss (the loss curve).
    """
    if config.group_by_text:
        raise OhloraError("group_by_text is for the ethics classifier (every prompt against the same category names); "
                          "memory pairs differ line by line", fix="use a memory preset (memory_study.PRESETS)")
    out_dir = Path(out_dir or default_model_dir())
    meta = {"task": "memory", "train_lines": len(train_lines)}
    with _recording_step_losses() as losses:
        if config.in_batch:
            history = train_cosine_in_batch(model, _as_lines(train_lines, labels), _as_lines(valid_lines, labels),
                                            labels.to_numpy(), config, profile, out_dir, meta)
        else:
            history = train_cosine_pairs(model, as_training_pairs(build_pairs(train_lines, labels)),
                                         as_training_pairs(build_pairs(valid_lines, labels)), config, profile,
                                         out_dir, meta)
    if not losses and (out_dir / STEP_LOG).is_file():  # reused: nothing trained, the stored curve stands
        return history, pd.read_csv(out_dir / STEP_LOG)
    steps = pd.DataFrame({"step": np.arange(1, len(losses) + 1), "train_loss": losses})
    atomic_write_text(out_dir / STEP_LOG, steps.to_csv(index=False))
    return history, steps


def _as_lines(lines: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """The in-batch trainer's lines: a = message (query), b = memory (passage), group = the key's row of ``labels``."""
    return pd.DataFrame({"a": lines["message"].tolist(), "b": lines["memory"].tolist(),
                         "group": _label_rows(lines["key"], labels)})


@contextmanager
def _recording_step_losses():
    """Collect every training step's loss: the shared trainer logs once per epoch, too coarse for a curve.

    A stop-gap that wraps the pair-loss classes the trainer builds; it changes nothing they compute.
    """
    import torch
    from sentence_transformers.sentence_transformer import losses

    from . import sbert_training

    recorded: list[float] = []
    modules = {"CosineSimilarityLoss": losses, "CoSENTLoss": losses, "CosineInBatchLoss": sbert_training}
    stock = {name: getattr(module, name) for name, module in modules.items()}

    def recording(base):
        class Recording(base):
            def forward(self, *args, **kwargs):
                loss = super().forward(*args, **kwargs)
                if torch.is_grad_enabled():  # training steps only, not the evaluation's loss
                    recorded.append(float(loss.detach()))
                return loss

        Recording.__name__ = Recording.__qualname__ = base.__name__  # the saved model card names the loss
        return Recording

    for name, base in stock.items():
        setattr(modules[name], name, recording(base))
    try:
        yield recorded
    finally:
        for name, base in stock.items():
            setattr(modules[name], name, base)


# --- evaluation ------------------------------------------------------------------------------------

def pair_predictions(similarity: np.ndarray, pairs: pd.DataFrame, lines: pd.DataFrame) -> np.ndarray:
    """Each pair's cosine, read from ``similarity_matrix(lines' messages, lines' memories)``."""
    row = pd.Index(lines["message"]).get_indexer(pairs["message"])
    column = pd.Index(lines["memory"]).get_indexer(pairs["memory"])
    return similarity[row, column]


def evaluate_pairs(similarity: np.ndarray, pairs: pd.DataFrame, lines: pd.DataFrame) -> dict[str, float]:
    """MSE / MAE / Pearson of the pairs' cosines against their labels (the original's test figures)."""
    return pair_metrics(pair_predictions(similarity, pairs, lines), pairs["label"].to_numpy())


def pair_examples(pairs: pd.DataFrame, n: int = 6, seed: int = 42) -> pd.DataFrame:
    """A few pairs of each kind: same key (1.0), related key (between 0 and 1), unrelated key (0)."""
    kinds = pairs.assign(kind=np.select([pairs["label"] >= 1.0, pairs["label"] > 0.0],
                                        ["same key", "related key"], "unrelated key"))
    shown = [group.sample(min(n, len(group)), random_state=seed) for _, group in kinds.groupby("kind", sort=False)]
    return pd.concat(shown)[["kind", "memory", "message", "label"]].reset_index(drop=True)


def top1_retrieval(similarity: np.ndarray, keys) -> dict[str, int]:
    """For each message (row i, key keys[i]), the best memory (column) among all: right key? its own line?"""
    keys = np.asarray(keys)
    best = similarity.argmax(axis=1)
    return {"right_key": int((keys[best] == keys).sum()), "own_item": int((best == np.arange(len(keys))).sum()),
            "total": len(keys)}


def reader_top1(folder: Path = READER_CHECK_DIR, lines: pd.DataFrame | None = None) -> pd.DataFrame:
    """Readers' picks on the test split (``data/memory/reader_check``), counted as ``top1_retrieval`` counts a
    model's: a memory of the message's key picked (``right_key``), the message's own line (``own_item``), and
    how many different memories the reader used (all of them: messages and memories matched one to one).

    ``lines``: the test lines the sheet must hold (default: those of the memory data); a sheet that no longer
    matches them is refused, since its figures would describe another split."""
    from .data import load_memory
    from .formats import parse_memory_item

    folder = Path(folder)
    messages, memories, key = (_read_reader_csv(folder / name, columns) for name, columns in
                               (("sheet_messages.csv", ["message_id", "message"]),
                                ("sheet_memories.csv", ["memory_id", "memory"]),
                                ("key.csv", ["message_id", "key", "memory_id"])))
    test = split_lines(load_memory())["test"] if lines is None else lines
    sheet = key.merge(messages, on="message_id").merge(memories, on="memory_id")
    if len(sheet) != len(key) or sorted(zip(sheet["key"], sheet["message"], sheet["memory"])) != sorted(
            zip(test["key"], test["message"], test["memory"])):
        raise OhloraError(f"the reader sheet in {folder} does not hold the memory data's test lines",
                          fix="draw a new sheet from the test split and ask readers again (README.md there)")
    memory_key = {row.memory_id: parse_memory_item(row.memory)[0] for row in memories.itertuples()}
    rows = []
    for path in sorted(folder.glob("picks_*.csv")):
        picks = _read_reader_csv(path, ["message_id", "memory_id"])
        unknown = sorted(set(picks["memory_id"]) - set(memory_key)) + sorted(set(picks["message_id"]) - set(key["message_id"]))
        if unknown or sorted(picks["message_id"]) != sorted(key["message_id"]):
            raise OhloraError(f"{path}: expected one pick for each of the {len(key)} messages of the sheet"
                              + (f"; unknown ids {unknown[:5]}" if unknown else ""),
                              fix="one row per message_id of sheet_messages.csv, memory_id from sheet_memories.csv")
        scored = key.merge(picks, on="message_id", suffixes=("", "_picked"))
        rows.append({"reader": path.stem.removeprefix("picks_"),
                     "right_key": int((scored["memory_id_picked"].map(memory_key) == scored["key"]).sum()),
                     "own_item": int((scored["memory_id_picked"] == scored["memory_id"]).sum()),
                     "total": len(scored), "memories_used": int(scored["memory_id_picked"].nunique())})
    return pd.DataFrame(rows, columns=["reader", "right_key", "own_item", "total", "memories_used"])


def _read_reader_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise OhloraError(f"{path} is missing", fix="restore data/memory/reader_check from the repository")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(frame.columns) != columns:
        raise OhloraError(f"{path}: columns {list(frame.columns)}, expected {columns}",
                          fix="keep the header the folder's README describes")
    return frame


@dataclass(frozen=True)
class SweepPoint:
    threshold: float
    precision: float   # share of memories brought in that have the message's key (nan when none was)
    recall: float      # share of stores holding a memory of the message's key where that memory is brought in
    retrieved: int     # stores whose best memory reaches the threshold (a memory is brought in)
    correct: int       # of those, the memory brought in has the message's key


def simulated_stores(similarity: np.ndarray, keys, store_size: int = STORE_SIZE, draws: int = STORE_DRAWS,
                     seed: int = 0, messages=None) -> pd.DataFrame:
    """The chat's decision, simulated on one split's lines: each message (row i) meets ``draws`` memory stores
    of ``store_size`` memories (columns) of the split. Every other store holds one memory of the message's key
    (any line of that key, the message's own included) among memories of other keys; the rest hold other keys
    only. The chat brings in a store's best memory when its cosine reaches the threshold. ``messages``: a
    boolean mask of the rows to simulate (default all; the stores still draw from every line's memory).

    One row per (message, store): ``message`` (row), ``holds_key``, ``best_score``, ``best_right`` (the best
    memory has the message's key)."""
    keys = np.asarray(keys)
    rows_to_simulate = np.ones(len(keys), bool) if messages is None else np.asarray(messages, bool)
    rng = np.random.default_rng(seed)
    rows = []
    for i in np.flatnonzero(rows_to_simulate):
        key = keys[i]
        same, other = np.flatnonzero(keys == key), np.flatnonzero(keys != key)
        for draw in range(draws):
            holds_key = draw % 2 == 0
            store = list(rng.choice(other, min(len(other), store_size - holds_key), replace=False))
            if holds_key:
                store.append(rng.choice(same))
            best = store[int(np.argmax(similarity[i, store]))]
            rows.append((i, holds_key, float(similarity[i, best]), bool(keys[best] == key)))
    return pd.DataFrame(rows, columns=["message", "holds_key", "best_score", "best_right"])


def store_point(stores: pd.DataFrame, threshold: float) -> SweepPoint:
    """Precision and recall of the chat's decision at ``threshold`` over ``simulated_stores``."""
    brought = stores["best_score"].to_numpy() >= threshold
    right = brought & stores["best_right"].to_numpy()
    retrieved, correct = int(brought.sum()), int(right.sum())
    holding = int(stores["holds_key"].sum())
    return SweepPoint(float(threshold), correct / retrieved if retrieved else float("nan"),
                      correct / holding if holding else float("nan"), retrieved, correct)


def sweep_point(similarity: np.ndarray, keys, threshold: float, messages=None) -> SweepPoint:
    """``store_point`` of the split's ``simulated_stores`` (the default simulation) at ``threshold``."""
    return store_point(simulated_stores(similarity, keys, messages=messages), threshold)


def threshold_sweep(similarity: np.ndarray, keys, grid=THRESHOLD_GRID, messages=None,
                    beta: float = THRESHOLD_BETA) -> pd.DataFrame:
    """Precision and recall of the chat's decision (``simulated_stores``) at every threshold of ``grid``."""
    return store_sweep(simulated_stores(similarity, keys, messages=messages), grid, beta)


def store_sweep(stores: pd.DataFrame, grid=THRESHOLD_GRID, beta: float = THRESHOLD_BETA) -> pd.DataFrame:
    """``store_point`` of ``stores`` at every threshold of ``grid``, with its F-``beta``."""
    frame = pd.DataFrame([vars(store_point(stores, t)) for t in grid])
    frame["f_beta"] = f_beta(frame["precision"], frame["recall"], beta)
    return frame


def choose_threshold(similarity: np.ndarray, keys, setting: str = "auto", split: str = "valid",
                     test: tuple[np.ndarray, object] | None = None, messages=None, test_messages=None,
                     beta: float = THRESHOLD_BETA) -> dict:
    """``"auto"``: the best F-``beta`` of ``threshold_sweep`` over ``similarity`` (the ``split`` lines; the higher
    threshold on ties); else the float in ``setting``. ``test=(similarity, keys)`` of the test lines adds the
    chosen threshold's precision and recall there (``test_precision``, ``test_recall``). ``messages`` and
    ``test_messages``: boolean masks of the rows whose messages the choice is for (default all)."""
    stores = simulated_stores(similarity, keys, messages=messages)
    if stores.empty:
        raise OhloraError(f"no {split} message to choose a threshold on",
                          fix="check the split's lines and the mask of messages passed")
    if str(setting).strip().lower() == "auto":
        sweep = store_sweep(stores, beta=beta)
        best = sweep.loc[sweep["f_beta"] == sweep["f_beta"].max()].iloc[-1]
        threshold = float(best["threshold"])
        how = f"max F{beta:g} of the chat's decision over {STORE_SIZE}-memory stores of the {split} split"
    else:
        try:
            threshold = float(setting)
        except ValueError:
            raise OhloraError(f"threshold {setting!r} is not a number", fix='use "auto" or a number like "0.8"') from None
        if not math.isfinite(threshold):
            raise OhloraError(f"threshold {setting!r} is not finite", fix='use "auto" or a number like "0.8"')
        how = "given by the user"
    point = store_point(stores, threshold)
    messages_used = len(keys) if messages is None else int(np.sum(messages))
    choice = {"threshold": threshold, "how": how, "split": split, "messages": messages_used,
              "precision": point.precision, "recall": point.recall, "retrieved": point.retrieved,
              "correct": point.correct, "stores": len(stores), "store_size": STORE_SIZE}
    if test is not None:
        on_test = sweep_point(*test, threshold, messages=test_messages)
        choice |= {"test_precision": on_test.precision, "test_recall": on_test.recall}
    return choice


def choose_asked_threshold(similarity: np.ndarray, lines: pd.DataFrame, setting: str = "auto",
                           test: tuple[np.ndarray, pd.DataFrame] | None = None, at_most: float | None = None) -> dict:
    """``choose_threshold`` for the messages that ask to recall (``memory.asks_to_recall``) among ``lines``
    (columns ``message``, ``key``), in stores drawn from all of them; ``test=(similarity, test_lines)``.
    A number in ``setting`` is used as is, as for every other message. ``at_most`` (the threshold of every
    other message): a message that asks to recall wants a memory at least as much as any other, so a higher
    choice, which the few asking messages of a valid split can make by chance, is lowered to it.

    "auto" takes the best F1 (``ASKED_THRESHOLD_BETA``), not F0.5: asked for a fact, she has no right answer
    without its memory, so a missed memory fails the answer as a wrong one does."""
    asking = lines["message"].map(asks_to_recall).to_numpy()
    test_args = {}
    if test is not None:
        test_similarity, test_lines = test
        test_args = {"test": (test_similarity, test_lines["key"]),
                     "test_messages": test_lines["message"].map(asks_to_recall).to_numpy()}
    choice = choose_threshold(similarity, lines["key"], setting, messages=asking, beta=ASKED_THRESHOLD_BETA, **test_args)
    how = choice["how"] + ", messages that ask to recall only"
    if at_most is not None and choice["threshold"] > at_most:
        how += f" (it chose {choice['threshold']:.2f}: lowered to the threshold of every other message)"
        choice = choose_threshold(similarity, lines["key"], str(at_most), messages=asking, **test_args)
    return choice | {"how": how}


# --- the yardstick's "do you remember …?" turns ------------------------------------------------------

def asked_turns(conversations) -> pd.DataFrame:
    """Each scripted turn that asks for an earlier fact (``eval_data.load_conversations``): the question, the
    items a perfect memory would hold by then (every fact stated before it) and the item it asks for.

    The same turns and items as the yardstick's "retriever alone, right memories stored"."""
    rows = []
    for conversation in conversations:
        for index, turn in enumerate(conversation.turns):
            if turn.recall is None:
                continue
            stated = [t.save for t in conversation.turns[:index + 1] if t.save is not None and t.save is not turn.save]
            rows.append({"conversation": conversation.id, "turn": index, "question": turn.user,
                         "items": [fact.item for fact in stated],
                         "expected": conversation.turns[turn.recall].save.item})
    return pd.DataFrame(rows, columns=["conversation", "turn", "question", "items", "expected"])


def asked_retrieval(retriever, asked: pd.DataFrame, threshold: float | None = None) -> pd.DataFrame:
    """``asked`` with the retriever's best item and score for each question: ``first`` (the asked item scores
    highest), ``asks`` (``memory.asks_to_recall`` flags the question), ``threshold`` (the one the chat applies
    to it: ``retriever.threshold_for``, unless ``threshold`` is given), ``brought_back`` (first and reaches it:
    what the chat would put in her prompt)."""
    from .ethics import clean_text  # the chat retrieves on the user's words without markers

    questions = [clean_text(question) for question in asked["question"]]
    # the chat's own choice of the best item, with no threshold: which item comes first, and its score
    picked = [retriever.best(question, items, threshold=float("-inf"))
              for question, items in zip(questions, asked["items"])]
    table = asked.assign(best=[item for item, _ in picked], score=np.round([score for _, score in picked], 4),
                         asks=[asks_to_recall(q) for q in questions],
                         threshold=[retriever.threshold_for(q) if threshold is None else threshold for q in questions])
    table["first"] = table["best"] == table["expected"]
    table["brought_back"] = table["first"] & (table["score"] >= table["threshold"])
    return table


def save_threshold(model_dir: Path, choice: dict, asked_choice: dict | None = None) -> Path:
    """Write the chosen threshold (and the one for messages that ask to recall) next to the trained model,
    where ``load_retriever`` finds them."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise OhloraError(f"no trained model folder {model_dir}", fix="train the memory model first")
    path = model_dir / THRESHOLD_FILE
    saved = dict(choice)
    if asked_choice is not None:
        saved |= {ASKED_THRESHOLD_KEY: asked_choice["threshold"], "asked": asked_choice}
    atomic_write_text(path, json.dumps(saved, ensure_ascii=False, indent=2))
    return path


# --- plots (matplotlib; Hangul needs setup_notebook first) -----------------------------------------

def plot_heatmap(ax, matrix, row_labels, column_labels, title: str, digits: int = 2):
    """A labelled heat-map with each cell's value written in it."""
    matrix = np.asarray(matrix, dtype=float)
    image = ax.imshow(matrix, cmap="viridis", vmin=min(0.0, matrix.min()), vmax=1.0)
    ax.set_xticks(range(len(column_labels)), column_labels, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, f"{value:.{digits}f}", ha="center", va="center", fontsize=7,
                color="black" if value > 0.6 else "white")
    ax.set_title(title)
    return image


def plot_threshold_sweep(axes, rows: pd.DataFrame, choice: dict):
    """Left: precision vs recall over the sweep; right: both against the threshold; the choice and the
    original's 0.95 marked."""
    precision_recall_panels(axes[0], axes[1], rows, [Mark(choice["threshold"], "chosen"),
                                                     Mark(ORIGINAL_THRESHOLD, "original", "x", "grey")],
                            curve_labels=("recall (stores holding the key: its memory brought in)",
                                          "precision (memories brought in with the message's key)"))


def comparison_table(columns: dict[str, tuple[dict, dict | None]]) -> pd.DataFrame:
    """One column per model: its pair metrics and top-1 retrieval (``(metrics, top1)``; the original's first).

    ``columns`` maps a column name to ``(evaluate_pairs(...), top1_retrieval(...))``; for the original pass
    ``(ORIGINAL_TEST_METRICS, None)`` and its top-1 comes from ``ORIGINAL_TOP1``.
    """
    table = {}
    for name, (metrics, top1) in columns.items():
        if top1 is None:
            right, total = ORIGINAL_TOP1
            table[name] = {**metrics, "top-1 right key": f"{right}/{total}", "top-1 own item": "–"}
        else:
            table[name] = {**metrics, "top-1 right key": f"{top1['right_key']}/{top1['total']}",
                           "top-1 own item": f"{top1['own_item']}/{top1['total']}"}
    return pd.DataFrame(table).map(lambda v: f"{v:.4f}" if isinstance(v, float) else v)


def store_policy_demo(items: list[str], folder: Path, start, hours_later: float = 11) -> tuple[dict, list[str]]:
    """What this study's memory store and the original's policies keep of ``items`` added at ``start``,
    then ``hours_later``: ``({policy: open store}, lines to print)`` (one SQLite file per policy in ``folder``)."""
    from .memory_store import ManualClock, MemoryStore

    stores, lines = {}, []
    for name, policies in [("this study", {}), ("original", {"replace_same_key": False, "follow_calendar": False})]:
        clock = ManualClock(start)
        store = stores[name] = MemoryStore(Path(folder) / f"{name}.sqlite", user="demo", clock=clock, **policies)
        lines.append(f"— {name} —")
        for item in items:
            result = store.add(item)
            replaced = f" (was {', '.join(result.replaced)})" if result.replaced else ""
            lines.append(f"  {start:%a} add {item:18s} → {result.status}{replaced}")
        lines.append(f"  {start:%a} held: {store.items()}")
        clock.advance(hours=hours_later)
        lines.append(f"  {clock.now:%a} held: {store.items()}")
    return stores, lines


# --- the whole run (command line; notebook 03 shows the same steps one by one) ---------------------

def run(profile: Profile, config: SbertTrainConfig, threshold: str = "auto", out_dir: Path | None = None) -> dict:
    from .data import load_memory
    from .models import load_sbert_base, provision

    provision(profile)
    every_line = load_memory()
    lines = split_lines(every_line)
    model = load_sbert_base(profile)
    labels = key_labels(key_cosines(model, profile, every_line["key"]))
    out_dir = Path(out_dir or default_model_dir())
    history, steps = train_memory_sbert(model, lines["train"], lines["valid"], labels, config, profile, out_dir)
    similarity = {name: similarity_matrix(model, prefixes(profile), part["message"], part["memory"])
                  for name, part in lines.items() if name != "train"}
    choice = choose_threshold(similarity["valid"], lines["valid"]["key"], threshold,
                              test=(similarity["test"], lines["test"]["key"]))
    asked_choice = choose_asked_threshold(similarity["valid"], lines["valid"], threshold,
                                          test=(similarity["test"], lines["test"]), at_most=choice["threshold"])
    save_threshold(out_dir, choice, asked_choice)
    test = build_pairs(lines["test"], labels)
    return {"history": history, "steps": steps, "test": evaluate_pairs(similarity["test"], test, lines["test"]),
            "top1": top1_retrieval(similarity["test"], lines["test"]["key"]), "threshold": choice,
            "asked_threshold": asked_choice}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ohlora_utils.memory_study",
                                     description="Train the memory S-BERT, choose its threshold, save both.")
    parser.add_argument("--profile", default=None, help="embedded | paper | tiny (default: $OHLORA_PROFILE)")
    parser.add_argument("--preset", default="", help="quick | default | paper (default: $OHLORA_PRESET)")
    parser.add_argument("--threshold", default="auto", help='"auto" (chosen on the valid split) or a number')
    parser.add_argument("--readers", action="store_true",
                        help="only print the readers' top-1 on the test split (data/memory/reader_check), no training")
    args = parser.parse_args(argv)
    with exit_on_user_error(parser.prog):
        if args.readers:
            print(reader_top1().to_string(index=False))
            return
        result = run(get_profile(args.profile), train_config(args.preset), args.threshold)
        print(result["history"].to_string(index=False))
        print("test pairs:", {k: round(v, 4) for k, v in result["test"].items()})
        print("top-1:", result["top1"], "threshold:", result["threshold"])
        print("threshold for messages that ask to recall:", result["asked_threshold"])


if __name__ == "__main__":
    main()
