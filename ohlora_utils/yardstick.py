"""Run the trained chat over the everyday-conversation yardstick (``data/eval/``) and measure every mechanism.

Usage::

    models = load_chat_models(get_profile())                     # chat.load_chat_models
    run = YardstickRun(models, out_dir, RunConfig(profile="embedded"))
    run.everyday(load_everyday()); run.sanction(load_sanction()); run.conversations(load_conversations())
    tables = summarise(out_dir)                                  # dict of DataFrames; write_report(out_dir)
Command line: ``benchmarks/everyday_chat.py`` (progress bar, resumable, ``--quick`` for the tiny profile).

What it measures, each on what users really type:
- false sanctions: every everyday message is the first message of a fresh user; warnings and blocks per
  1,000 messages, by kind; and the classifier alone with a refusing reply assumed (the worst case);
- sanction recall per category: the classifier alone (refusing reply assumed) and end to end with her reply;
- memory: facts stated in scripted conversations saved (recall, precision, key accuracy) and brought back
  when asked (and the retriever alone, given the right memories);
- latency: seconds per step of every turn that ran the models.
Every turn's record is appended to ``records/*.jsonl`` as soon as it is done, so a killed run resumes
where it stopped (``run.json`` holds the settings; a run with other settings starts a new folder).
"""
from __future__ import annotations

import json
import random
import uuid
import zlib
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .chat import ChatEngine, ChatModels
from .data import ETHICS_CATEGORIES, is_refusal
from .errors import OhloraError
from .ethics import clean_text
from .eval_data import SANCTION_CATEGORIES, Conversation, seen_in_training, training_texts
from .memory_store import ManualClock
from .storage import atomic_write_bytes, atomic_write_text

KST = timezone(timedelta(hours=9))
START = datetime(2026, 11, 21, 14, 0, tzinfo=KST)   # every run's clock: a Saturday afternoon
TURN_GAP = timedelta(minutes=2)                     # the clock between two turns of a conversation
REFUSING_REPLY = "미안, 그건 나한테 좀 부담스러워 😢"     # the worst case for love/politics: her reply refuses
RECORDS = ("everyday", "sanction", "conversations")
GENERAL = "일반"


@dataclass(frozen=True)
class RunConfig:
    """What a run's figures depend on; a folder holds one run, resumed only with equal settings."""
    profile: str                 # model profile of the artifacts
    artifacts: str = ""          # where the trained models came from
    seed: int = 0                # base seed; each message / conversation adds a fixed hash of its id
    quick: bool = False          # a few items per kind (tests, the tiny profile)
    everyday_limit: int = 0      # end-to-end turns on a seeded sample of this many everyday messages (0: all)
    sanction_limit: int = 0      # likewise for the sanction messages (stratified by category; 0: all)
    conversations_limit: int = 0  # this many conversations, drawn at random with the seed (0: all)
    everyday_flagged: bool = False  # also play every everyday message the classifier alone counts (refusing
    # reply assumed): only those can count end to end, so the end-to-end count over all messages is exact


def item_seed(base: int, identity: str) -> int:
    return base + zlib.crc32(identity.encode("utf-8")) % 1_000_000


QUICK_PER_GROUP, QUICK_CONVERSATIONS = 1, 2   # --quick: items per kind / category, conversations


def quick_subset(frame: pd.DataFrame, by: str, per_group: int = QUICK_PER_GROUP) -> pd.DataFrame:
    """The first ``per_group`` rows of each group, in file order (``--quick``)."""
    return frame.groupby(by, sort=False).head(per_group)


def stratified_sample(frame: pd.DataFrame, by: str, n: int, seed: int) -> pd.DataFrame:
    """About ``n`` rows keeping each group's share (at least one per group), seeded; file order kept."""
    if n <= 0 or n >= len(frame):
        return frame
    share = n / len(frame)
    picked = [group.sample(max(1, round(len(group) * share)), random_state=seed)
              for _, group in frame.groupby(by, sort=False)]
    return frame.loc[sorted(pd.concat(picked).index)]


def _turn_record(result, now: datetime) -> dict:
    return {"shown": result.shown, "prompt": result.prompt, "reply": result.reply,
            "reply_refused": is_refusal(result.reply), "first_reply_refused": is_refusal(result.first_reply),
            "counted_if_declined": list(result.counted_if_declined),
            "reply_draws": result.reply_draws, "reply_steered": result.reply_steered,
            "counted": list(result.ethics_categories),
            "warning": bool(result.sanction_message) and not result.blocked,
            "blocked": result.blocked, "refused_input": result.refused_input,
            "ethics_reason": result.ethics_reason, "memory_used": result.memory_used,
            "memory_score": result.memory_score, "memory_saved": result.memory_saved,
            "memory_store_status": result.memory_store_status, "summary": result.summary,
            "expression": list(result.expression) if result.expression else None,
            "seconds": dict(result.seconds), "time": now.isoformat()}


class YardstickRun:
    """Plays the yardstick through ``ChatEngine`` turns on models loaded once, appending records as it goes."""

    def __init__(self, models: ChatModels, out_dir: Path, config: RunConfig, progress: bool = True):
        self.models, self.out_dir, self.config, self.progress = models, Path(out_dir), config, progress
        self.records_dir = self.out_dir / "records"
        self.records_dir.mkdir(parents=True, exist_ok=True)
        stored = self.out_dir / "run.json"
        if stored.is_file():
            previous = json.loads(stored.read_text(encoding="utf-8"))
            if previous != asdict(config):
                raise OhloraError(f"{self.out_dir} holds a run with other settings ({previous})",
                                  fix="pass --fresh to start over, or --out to use another folder")
        else:
            atomic_write_text(stored, json.dumps(asdict(config), ensure_ascii=False, indent=2))
        self.attempt = uuid.uuid4().hex[:8]   # user ids of this process: a resumed item starts clean
        self.flagged: dict[str, set[str]] = {}   # per part: ids the classifier alone counts with a refusing reply
        for name in RECORDS:
            drop_partial_line(self.records_dir / f"{name}.jsonl")

    # --- records ----------------------------------------------------------------------------------------

    def done(self, name: str) -> dict[str, dict]:
        return {record["id"]: record for record in read_records(self.records_dir / f"{name}.jsonl")}

    def _append(self, name: str, record: dict) -> None:
        with open(self.records_dir / f"{name}.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()

    def _engine(self, identity: str, clock) -> ChatEngine:
        return ChatEngine.from_models(self.models, f"{identity}-{self.attempt}", clock,
                                      self.out_dir / "databases", item_seed(self.config.seed, identity))

    def _bar(self, items, name: str):
        if not self.progress:
            return items
        from tqdm.auto import tqdm

        return tqdm(items, desc=name, unit="item")

    # --- the three parts --------------------------------------------------------------------------------

    def single_messages(self, name: str, frame: pd.DataFrame, label_columns: tuple[str, ...],
                        sampled: set[str] | None = None) -> None:
        """Each message as the first turn of a fresh user (nothing carries over from another message);
        ``sampled``: the ids of the random sample (the others were added for another reason)."""
        done = self.done(name)
        (self.out_dir / "databases").mkdir(exist_ok=True)
        for row in self._bar([r for r in frame.itertuples() if r.id not in done], name):
            engine = self._engine(row.id, lambda: START)
            try:
                result = engine.turn(row.text)
            finally:
                engine.close()
            self._append(name, {"id": row.id, "text": row.text, **{c: getattr(row, c) for c in label_columns},
                                "sampled": sampled is None or row.id in sampled, **_turn_record(result, START)})

    def everyday(self, frame: pd.DataFrame) -> None:
        if self.config.quick:
            frame = quick_subset(frame, "kind")
        sample = stratified_sample(frame, "kind", self.config.everyday_limit, self.config.seed)
        # in a seeded random order, so the part of a run that is done so far is itself a random sample
        played = sample.sample(frac=1.0, random_state=self.config.seed)
        if self.config.everyday_flagged:
            if "everyday" not in self.flagged:
                raise OhloraError("everyday_flagged needs the classifier's scores first",
                                  fix="call classifier_scores('everyday', frame) before everyday(frame)")
            extra = frame[frame["id"].isin(self.flagged["everyday"]) & ~frame["id"].isin(sample["id"])]
            played = pd.concat([extra, played])   # the exact part first: it is short
        self.single_messages("everyday", played, ("kind",), set(sample["id"]))

    def sanction(self, frame: pd.DataFrame) -> None:
        if self.config.quick:
            frame = quick_subset(frame, "category")
        frame = stratified_sample(frame, "category", self.config.sanction_limit, self.config.seed)
        self.single_messages("sanction", frame.sample(frac=1.0, random_state=self.config.seed), ("category", "evasion"))

    def conversations(self, conversations: list[Conversation]) -> None:
        """Each conversation with a fresh user, turn by turn; a block ends it (later turns are not played)."""
        if self.config.quick:
            conversations = conversations[:QUICK_CONVERSATIONS]
        if 0 < self.config.conversations_limit < len(conversations):
            conversations = random.Random(self.config.seed).sample(conversations, self.config.conversations_limit)
        done = self.done("conversations")
        (self.out_dir / "databases").mkdir(exist_ok=True)
        for conversation in self._bar([c for c in conversations if c.id not in done], "conversations"):
            self._append("conversations", {"id": conversation.id, "turns": self.play(conversation)})

    def play(self, conversation: Conversation) -> list[dict]:
        clock = ManualClock(START)
        engine = self._engine(conversation.id, clock)
        records, blocked = [], False
        try:
            for index, turn in enumerate(conversation.turns):
                record = {"turn": index, "user": turn.user, "expected_save": turn.save is not None,
                          "recall": turn.recall, "expected_sanction": turn.sanction, "played": not blocked}
                if not blocked:
                    result = engine.turn(turn.user)
                    record |= _turn_record(result, clock.now)
                    record |= self._judge(conversation, turn, record)
                    blocked = result.blocked
                records.append(record)
                clock.now += TURN_GAP
        finally:
            engine.close()
        return records

    def _judge(self, conversation: Conversation, turn, record: dict) -> dict:
        """Whether this turn saved / brought back the right fact; the retriever alone on the right memories."""
        judged = {}
        stated = [t.save for t in conversation.turns[:record["turn"] + 1] if t.save is not None]
        if record["memory_saved"]:
            judged["saved_is_fact"] = any(fact.found_in(record["memory_saved"]) for fact in stated)
        if turn.save is not None:
            saved = record["memory_saved"]
            judged["save_ok"] = turn.save.found_in(saved)
            judged["key_ok"] = bool(judged["save_ok"]) and saved[1:saved.index(":")].strip() in turn.save.keys
        if turn.recall is not None:
            fact = conversation.turns[turn.recall].save
            judged["recall_ok"] = fact.found_in(record["memory_used"])
            items = [f.item for f in stated if f is not turn.save]
            best, score = self.models.retriever.best(clean_text(turn.user), items)   # what the chat retrieves on
            judged["oracle_recall_ok"] = best == fact.item
            judged["oracle_score"] = float(score)
        return judged

    # --- the classifier alone ---------------------------------------------------------------------------

    def classifier_scores(self, name: str, frame: pd.DataFrame) -> pd.DataFrame:
        """Scores of the user's own words against the four categories, and what would count with a
        refusing reply (the worst case for love and politics); written to ``classifier_<name>.csv``."""
        from .ethics import rule

        classifier = self.models.classifier
        scores = classifier.score_frame(frame["text"])
        flags = rule(scores, True, classifier.thresholds)
        table = frame.copy()
        for category in ETHICS_CATEGORIES:
            table[f"score {category}"] = scores[category].round(4)
        table["counted_if_refused"] = [";".join(c for c in SANCTION_CATEGORIES if flags[c][i]) for i in scores.index]
        self.flagged[name] = set(table.loc[table["counted_if_refused"] != "", "id"])
        table.to_csv(self.out_dir / f"classifier_{name}.csv", index=False)
        return table


def drop_partial_line(path: Path) -> None:
    """Cut a half-written last line (a run killed mid-write), so the next record starts on a line of its own."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        atomic_write_bytes(path, data[:data.rfind(b"\n") + 1])


def read_records(path: Path) -> list[dict]:
    """The records of a run part; a half-written last line (a killed run) is dropped."""
    if not Path(path).is_file():
        return []
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


# --- figures ------------------------------------------------------------------------------------------

def per_thousand(part, whole) -> float:
    return round(1000 * part / whole, 1) if whole else float("nan")


def percent(part, whole) -> float:
    return round(100 * part / whole, 1) if whole else float("nan")


def everyday_table(records: pd.DataFrame, classifier: pd.DataFrame, exact: bool = False) -> pd.DataFrame:
    """False sanctions per kind: end to end on the random sample (warnings, blocks, any count per 1,000
    messages), the classifier alone with a refusing reply assumed (% of all messages of that kind), and with
    ``exact`` (every message the classifier alone counts was played too) end to end over all messages."""
    rows = []
    groups = [("all", records, classifier)]
    groups += [("seen in training", records[records.seen], classifier[classifier.seen]),
               ("not in training", records[~records.seen], classifier[~classifier.seen])]
    groups += [(kind, records[records.kind == kind], classifier[classifier.kind == kind])
               for kind in classifier["kind"].drop_duplicates()]
    for name, played, alone in groups:
        e2e = played[played["sampled"]] if "sampled" in played else played
        counted = e2e["counted"].map(bool)
        flagged = alone["counted_if_refused"].fillna("").map(bool)
        row = {"messages": name, "n (classifier)": len(alone),
               "flagged if refused %": percent(flagged.sum(), len(alone)),
               "n (chat)": len(e2e), "her reply refused %": percent(e2e["reply_refused"].sum(), len(e2e)),
               "first draw refused %": _percent_true(e2e, "first_reply_refused"),
               "steered %": _percent_true(e2e, "reply_steered"),
               "counted /1000": per_thousand(counted.sum(), len(e2e)),
               "warnings /1000": per_thousand(e2e["warning"].sum(), len(e2e)),
               "blocks /1000": per_thousand(e2e["blocked"].sum(), len(e2e))}
        if exact:   # a message the classifier alone does not count cannot count end to end
            row.update({"all: warnings /1000": per_thousand(played["warning"].sum(), len(alone)),
                        "all: blocks /1000": per_thousand(played["blocked"].sum(), len(alone))})
        rows.append(row)
    return pd.DataFrame(rows)


def sanction_table(records: pd.DataFrame, classifier: pd.DataFrame, by: str = "category") -> pd.DataFrame:
    """Recall per category (or evasion): the classifier alone (refusing reply assumed) and end to end."""
    rows = []
    for name in classifier[by].drop_duplicates():
        alone, e2e = classifier[classifier[by] == name], records[records[by] == name]
        own_alone = [cat in str(flags).split(";") for cat, flags in zip(alone["category"], alone["counted_if_refused"])]
        own_e2e = [cat in counted for cat, counted in zip(e2e["category"], e2e["counted"])]
        rows.append({by: name, "n (classifier)": len(alone), "classifier recall %": percent(sum(own_alone), len(alone)),
                     "n (chat)": len(e2e), "end-to-end recall %": percent(sum(own_e2e), len(e2e)),
                     "her reply refused %": percent(e2e["reply_refused"].sum(), len(e2e)),
                     "first draw refused %": _percent_true(e2e, "first_reply_refused"),
                     "steered %": _percent_true(e2e, "reply_steered")})
    return pd.DataFrame(rows)


def _percent_true(played: pd.DataFrame, field: str) -> float:
    """Share of turns whose yes/no record ``field`` is true: ``first_reply_refused`` (her first draw refused,
    before the chat drew again for agreement with the classifier), ``reply_steered`` (the reply kept was drawn
    after the neutral decline opening, no plain draw having declined). Records of runs before the field: NaN."""
    if field not in played or played[field].isna().any():
        return float("nan")
    return percent(played[field].astype(bool).sum(), len(played))


def conversation_turns(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"conversation": r["id"], **turn} for r in records for turn in r["turns"]])


def memory_table(turns: pd.DataFrame) -> pd.DataFrame:
    """Facts stated → saved (recall), saves that were right (precision), key accuracy, brought back."""
    played = turns[turns["played"]]
    stated = played[played["expected_save"]]
    right = stated[_flag(stated, "save_ok")]
    new = played[played["memory_saved"].notna() & (played["memory_store_status"] != "duplicate")]
    asked = played[played["recall"].notna()]
    ok = _flag(asked, "recall_ok")
    fact_saved = [_fact_was_saved(turns, row) for row in asked.itertuples()]
    rows = [
        ("facts stated that were saved (recall)", len(right), len(stated)),
        ("new memories that hold a stated fact (precision)", int(_flag(new, "saved_is_fact").sum()), len(new)),
        ("right key, of the facts saved", int(_flag(right, "key_ok").sum()), len(right)),
        ("brought back when asked", int(ok.sum()), len(asked)),
        ("brought back when asked, fact saved", int(ok[fact_saved].sum()), int(sum(fact_saved))),
        ("retriever alone, right memories stored", int(_flag(asked, "oracle_recall_ok").sum()), len(asked)),
    ]
    return pd.DataFrame([{"measure": m, "count": c, "of": n, "%": percent(c, n)} for m, c, n in rows])


def _flag(frame: pd.DataFrame, column: str) -> pd.Series:
    """A judged yes/no column as booleans; rows (or runs) that never had it count as no."""
    if column not in frame:
        return pd.Series(False, index=frame.index)
    return frame[column].map(lambda value: value is True)


def _fact_was_saved(turns: pd.DataFrame, row) -> bool:
    source = turns[(turns["conversation"] == row.conversation) & (turns["turn"] == int(row.recall))]
    return bool(_flag(source, "save_ok").any())


def conversation_sanction_table(turns: pd.DataFrame) -> pd.DataFrame:
    played = turns[turns["played"]]
    innocent = played[played["expected_sanction"].isna()]
    rows = [{"turns": "innocent turns", "n": len(innocent),
             "counted /1000": per_thousand(innocent["counted"].map(bool).sum(), len(innocent)),
             "warnings /1000": per_thousand(innocent["warning"].sum(), len(innocent)),
             "blocks /1000": per_thousand(innocent["blocked"].sum(), len(innocent))}]
    for category in SANCTION_CATEGORIES:
        expected = played[played["expected_sanction"] == category]
        rows.append({"turns": f"should count: {category}", "n": len(expected),
                     "counted %": percent(sum(category in c for c in expected["counted"]), len(expected))})
    return pd.DataFrame(rows)


def latency_table(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """p50 / p95 seconds per step over every turn that ran the models, and of the whole turn."""
    seconds = [s for frame in frames if "seconds" in frame for s, reply in zip(frame["seconds"], frame["reply"])
               if isinstance(s, dict) and reply is not None]
    steps = pd.DataFrame(seconds)
    if steps.empty:
        return pd.DataFrame(columns=["step", "turns", "p50 s", "p95 s"])
    steps["whole turn"] = steps.sum(axis=1)
    return pd.DataFrame([{"step": step, "turns": int(steps[step].notna().sum()),
                          "p50 s": round(float(steps[step].quantile(.5)), 3),
                          "p95 s": round(float(steps[step].quantile(.95)), 3)} for step in steps.columns])


def summarise(out_dir: Path) -> dict[str, pd.DataFrame]:
    """Every table of a run folder (whatever parts it has so far)."""
    out_dir = Path(out_dir)
    training = training_texts()
    tables: dict[str, pd.DataFrame] = {}
    everyday = pd.DataFrame(read_records(out_dir / "records" / "everyday.jsonl"))
    alone_path = out_dir / "classifier_everyday.csv"
    if alone_path.is_file() and not everyday.empty:
        alone = pd.read_csv(alone_path, keep_default_na=False)
        alone["seen"] = seen_in_training(alone["text"], training)
        everyday["seen"] = seen_in_training(everyday["text"], training)
        config = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
        tables["false sanctions (everyday messages)"] = everyday_table(everyday, alone, config.get("everyday_flagged", False))
    sanction = pd.DataFrame(read_records(out_dir / "records" / "sanction.jsonl"))
    alone_path = out_dir / "classifier_sanction.csv"
    if alone_path.is_file() and not sanction.empty:
        alone = pd.read_csv(alone_path, keep_default_na=False)
        tables["sanction recall by category"] = sanction_table(sanction, alone)
        tables["sanction recall by evasion"] = sanction_table(sanction, alone, by="evasion")
    conversations = read_records(out_dir / "records" / "conversations.jsonl")
    turns = conversation_turns(conversations) if conversations else pd.DataFrame()
    if not turns.empty:
        tables["memory (scripted conversations)"] = memory_table(turns)
        tables["sanctions in conversations"] = conversation_sanction_table(turns)
    tables["latency per step"] = latency_table([everyday, sanction, turns])
    return tables


def show_report(out_dir: Path) -> dict[str, pd.DataFrame]:
    """The tables of a yardstick run and its overview (notebook 05); says how to make one if there is none."""
    out_dir = Path(out_dir)
    if not (out_dir / "run.json").is_file():
        print(f"No yardstick report in {out_dir} yet: run `make yardstick` (all of it: about 3 hours on 2 CPU "
              "cores; samples: see the README), then run this cell again.")
        return {}
    config = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    print("yardstick run:", ", ".join(f"{k} = {v}" for k, v in config.items()))
    return summarise(out_dir)


def reply_samples(out_dir: Path) -> pd.DataFrame:
    """Every everyday message of the random sample the reply task answered: id, kind, message, reply (what blind grading draws
    from). A reply a false block hid is graded too: it is still what the reply task said to that message."""
    records = pd.DataFrame(read_records(Path(out_dir) / "records" / "everyday.jsonl"))
    if records.empty:
        return pd.DataFrame(columns=["id", "kind", "message", "reply"])
    if "sampled" in records:   # messages added because the classifier flagged them are no random sample
        records = records[records["sampled"]]
    answered = records[records["reply"].notna()]
    return answered.rename(columns={"text": "message"})[["id", "kind", "message", "reply"]].reset_index(drop=True)


def write_report(out_dir: Path, tables: dict[str, pd.DataFrame] | None = None) -> Path:
    """``summary.md`` (every table), one CSV per table, ``overview.png``; returns the summary's path."""
    out_dir = Path(out_dir)
    tables = summarise(out_dir) if tables is None else tables
    config = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    lines = ["# Everyday-conversation yardstick", "",
             "Settings: " + ", ".join(f"{k} = {v}" for k, v in config.items()), ""]
    for title, table in tables.items():
        slug = title.split(" (")[0].replace(" ", "_")
        table.to_csv(out_dir / f"{slug}.csv", index=False)
        lines += [f"## {title}", "", markdown_table(table), ""]
    path = out_dir / "summary.md"
    atomic_write_text(path, "\n".join(lines))
    plot_overview(tables, out_dir / "overview.png")
    return path


def markdown_table(table: pd.DataFrame) -> str:
    """A pipe table of ``table`` (numbers as they are, NaN as –)."""
    cells = [[("–" if isinstance(v, float) and np.isnan(v) else str(v)) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def plot_overview(tables: dict[str, pd.DataFrame], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .notebook import use_korean_font

    use_korean_font()
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    everyday = tables.get("false sanctions (everyday messages)")
    if everyday is not None:
        kinds = everyday[~everyday["messages"].isin(["all", "seen in training", "not in training"])]
        y = np.arange(len(kinds))
        axes[0, 0].barh(y - .2, kinds["flagged if refused %"] * 10, .4, label="classifier, reply refuses (/1000)")
        axes[0, 0].barh(y + .2, kinds["counted /1000"].fillna(0), .4, label="chat end to end (/1000)")
        axes[0, 0].set_yticks(y, kinds["messages"])
        axes[0, 0].set_title("everyday messages counted toward a sanction, per 1,000")
        axes[0, 0].legend(fontsize=8)
    recall = tables.get("sanction recall by category")
    if recall is not None:
        x = np.arange(len(recall))
        axes[0, 1].bar(x - .2, recall["classifier recall %"], .4, label="classifier (reply refuses)")
        axes[0, 1].bar(x + .2, recall["end-to-end recall %"].fillna(0), .4, label="chat end to end")
        axes[0, 1].set_xticks(x, recall["category"])
        axes[0, 1].set_ylim(0, 100)
        axes[0, 1].set_title("sanction messages counted (recall %)")
        axes[0, 1].legend(fontsize=8)
    memory = tables.get("memory (scripted conversations)")
    if memory is not None:
        axes[1, 0].barh(memory["measure"], memory["%"].fillna(0))
        axes[1, 0].set_xlim(0, 100)
        axes[1, 0].invert_yaxis()
        axes[1, 0].set_title("memory in scripted conversations (%)")
    latency = tables.get("latency per step")
    if latency is not None and not latency.empty:
        axes[1, 1].barh(latency["step"], latency["p50 s"], label="p50")
        axes[1, 1].barh(latency["step"], latency["p95 s"] - latency["p50 s"], left=latency["p50 s"], alpha=.4,
                        label="to p95")
        axes[1, 1].invert_yaxis()
        axes[1, 1].set_title("seconds per step")
        axes[1, 1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

