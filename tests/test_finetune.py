"""LoRA fine-tuning on the tiny profile: completion-only labels, the fast loss, training, resume, reload."""
import json
import random

from dataclasses import asdict, replace

import pytest
import torch

from ohlora_utils import finetune
from ohlora_utils.adapters import read_adapter_meta
from ohlora_utils.data import load_fine_tuning
from ohlora_utils.errors import OhloraError
from ohlora_utils.finetune import (CheapDropout, EpochBlockSampler, base_weights_dtype, completion_positions_loss,
                                   epoch_rows, run_identity, task_config, task_rows, train_task, use_cheap_dropout)
from ohlora_utils.models import load_causal_lm
from ohlora_utils.tasks import TASK_NAMES, TASKS


def batch_of(tokenizer, rows):
    """input_ids / attention_mask / labels with the prompt masked (-100), right-padded."""
    ids, labels = [], []
    for row in rows:
        prompt = tokenizer(row["prompt"])["input_ids"]
        completion = tokenizer(row["completion"], add_special_tokens=False)["input_ids"]
        ids.append(prompt + completion)
        labels.append([-100] * len(prompt) + completion)
    width = max(map(len, ids))
    pad = tokenizer.pad_token_id
    return {"input_ids": torch.tensor([i + [pad] * (width - len(i)) for i in ids]),
            "attention_mask": torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids]),
            "labels": torch.tensor([l + [-100] * (width - len(l)) for l in labels])}


@pytest.mark.parametrize("task", ["output_message", "memory"])  # Llama and GPT-NeoX in the tiny profile
def test_fast_loss_equals_the_stock_loss(tiny_profile, small_frame, task):
    model, tokenizer = load_causal_lm(tiny_profile.llm_for(task))
    inputs = batch_of(tokenizer, task_rows(task, small_frame.head(4)))
    stock = model(**inputs).loss
    fast, count = completion_positions_loss(model, inputs)
    assert count == int((inputs["labels"][:, 1:] != -100).sum())
    assert torch.allclose(fast, stock, atol=1e-5)


def test_the_loss_over_a_vocabulary_is_the_cross_entropy_of_the_softmax_over_those_tokens(tiny_profile, small_frame):
    model, tokenizer = load_causal_lm(tiny_profile.llm_for("output_message"))
    inputs = batch_of(tokenizer, task_rows("output_message", small_frame.head(4)))
    targets = inputs["labels"][:, 1:]
    gold = targets[targets != -100]
    vocabulary = torch.unique(torch.cat([gold[: len(gold) // 2], torch.arange(0, 200, 3)]))  # half the gold tokens
    restricted, count = completion_positions_loss(model, inputs, vocabulary=vocabulary)

    rows = torch.unique(torch.cat([vocabulary, gold]))        # a gold token outside the vocabulary joins it
    logits = model(**inputs).logits[:, :-1][targets != -100][:, rows]
    expected = torch.nn.functional.cross_entropy(logits, torch.searchsorted(rows, gold))
    assert count == len(gold) and torch.allclose(restricted, expected, atol=1e-5)
    every_token = torch.arange(model.get_output_embeddings().weight.shape[0])
    full, _ = completion_positions_loss(model, inputs)
    assert torch.allclose(completion_positions_loss(model, inputs, vocabulary=every_token)[0], full, atol=1e-5)
    assert restricted < full   # fewer tokens share the probability


def test_cheap_dropout_keeps_the_rate_and_the_expectation_of_dropout():
    torch.manual_seed(0)
    dropout = CheapDropout(0.05).train()
    out = dropout(torch.ones(400_000))
    kept = out > 0
    assert abs(kept.float().mean().item() - 0.95) < 0.002
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / 0.95))
    assert abs(out.mean().item() - 1) < 0.003
    torch.manual_seed(0)
    assert torch.equal(dropout(torch.ones(400_000)), out)    # seeded by torch's generator
    x = torch.randn(3, 5, requires_grad=True)
    assert dropout.eval()(x) is x and CheapDropout(0.0).train()(x) is x
    odd = CheapDropout(0.5).train()(torch.ones(7, 3))        # any size, not only multiples of four
    assert odd.shape == (7, 3) and set(odd.unique().tolist()) <= {0.0, 2.0}


def test_cheap_dropout_replaces_every_lora_dropout_with_the_same_p(tiny_profile):
    from peft import LoraConfig, get_peft_model

    model, _ = load_causal_lm(tiny_profile.llm_for("output_message"))
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=16, lora_dropout=0.05, task_type="CAUSAL_LM",
                                             target_modules=list(finetune.TARGET_MODULES["llama"])))
    lora_layers = [m for m in model.modules() if hasattr(m, "lora_dropout")]
    assert use_cheap_dropout(model) == len(lora_layers) > 0
    assert all(isinstance(m.lora_dropout["default"], CheapDropout) and m.lora_dropout["default"].p == 0.05
               for m in lora_layers)
    assert use_cheap_dropout(model) == 0   # nothing left to swap


def test_frozen_base_weights_are_bf16_only_on_a_cpu_that_computes_bf16(monkeypatch):
    config = task_config("output_message", "default")
    monkeypatch.setattr(finetune, "cpu_has_bf16", lambda cpuinfo=None: True)
    assert base_weights_dtype(config, "cpu") == torch.bfloat16
    assert base_weights_dtype(replace(config, bf16_base_weights=False), "cpu") == torch.float32
    assert base_weights_dtype(config, "cuda") == torch.float32   # the Trainer's autocast does it on a GPU
    monkeypatch.setattr(finetune, "cpu_has_bf16", lambda cpuinfo=None: False)
    assert base_weights_dtype(config, "cpu") == torch.float32


def test_the_loss_vocabulary_is_part_of_a_run_s_identity():
    config, rows = task_config("memory", "default"), [{"prompt": "a", "completion": "b"}]
    plain = run_identity("memory", "base", config, rows, rows)
    one = run_identity("memory", "base", config, rows, rows, torch.tensor([1, 2, 3]))
    other = run_identity("memory", "base", config, rows, rows, torch.tensor([1, 2, 4]))
    assert len({json.dumps(i, sort_keys=True) for i in (plain, one, other)}) == 3


def test_completion_only_labels_cover_exactly_the_completion(tiny_profile, small_frame, tmp_path):
    """What SFTTrainer feeds the loss: prompt tokens masked, completion + EOS labelled."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = load_causal_lm(tiny_profile.llm_for("output_message"))
    rows = task_rows("output_message", small_frame.head(2))
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=Dataset.from_list(rows),
                         args=SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to=[],
                                        completion_only_loss=True))
    batch = trainer.data_collator([trainer.train_dataset[0]])
    labelled = batch["labels"][0][batch["labels"][0] != -100]
    assert tokenizer.decode(labelled) == rows[0]["completion"] + tokenizer.eos_token
    assert not rows[0]["prompt"].endswith(TASKS["output_message"].end_marker)


def test_each_epoch_is_a_new_augmentation_draw(small_frame):
    config = task_config("output_message", "default", epochs=3)
    rows = epoch_rows("output_message", small_frame[small_frame["data_type"] == "train"], config)
    blocks = [rows[i * 8:(i + 1) * 8] for i in range(3)]
    assert len(rows) == 24
    assert blocks[0] != blocks[1] or blocks[1] != blocks[2]  # synonyms redrawn per epoch
    for block in blocks:  # structure untouched
        assert all(r["completion"].endswith(" (답변 종료)") and r["prompt"].endswith("(답변 시작) ### 답변:")
                   for r in block)
    plain = epoch_rows("memory", small_frame[small_frame["data_type"] == "train"], task_config("memory", "default", epochs=2,
                                                                                             memory_repeats=1))
    assert plain[:8] == plain[8:]


def test_refusal_repeats_show_each_refusal_more_often_in_every_epoch_of_the_reply_task_only():
    frame = load_fine_tuning()
    train = frame[frame["data_type"] == "train"]
    refusals = int(train["output_message"].str.contains("미안|부담").sum())
    assert refusals > 0
    config = task_config("output_message", "default", epochs=2, augment=False, refusal_repeats=3)
    rows = epoch_rows("output_message", train, config)
    assert len(rows) == 2 * (len(train) + 2 * refusals)
    assert sum(("미안" in r["completion"] or "부담" in r["completion"]) for r in rows) == 2 * 3 * refusals
    memory = epoch_rows("memory", train, task_config("memory", "default", epochs=1, refusal_repeats=3, memory_repeats=1,
                                                     max_train_rows=0))
    assert len(memory) == len(train)
    with pytest.raises(OhloraError, match="refusal_repeats"):
        epoch_rows("output_message", train, task_config("output_message", "default", refusal_repeats=0))


def test_memory_repeats_show_each_row_with_a_memory_more_often_in_the_memory_task_only():
    frame = load_fine_tuning()
    train = frame[frame["data_type"] == "train"]
    with_memory = int((train["memory"].fillna("").str.len() > 0).sum())
    assert 0 < with_memory < len(train)
    rows = epoch_rows("memory", train, task_config("memory", "default", epochs=2, memory_repeats=2, max_train_rows=0))
    assert len(rows) == 2 * (len(train) + with_memory)
    assert sum(r["completion"].lstrip().startswith("[") for r in rows) == 2 * 2 * with_memory
    reply = epoch_rows("output_message", train, task_config("output_message", "default", epochs=1, augment=False,
                                                            memory_repeats=2))
    assert len(reply) == len(train)
    with pytest.raises(OhloraError, match="memory_repeats"):
        epoch_rows("memory", train, task_config("memory", "default", memory_repeats=0))


def test_epoch_block_sampler_visits_each_block_once_per_epoch():
    order = list(EpochBlockSampler(rows_per_epoch=5, epochs=3, seed=1))
    assert [sorted(order[i * 5:(i + 1) * 5]) for i in range(3)] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14]]
    assert order[:5] != [0, 1, 2, 3, 4] or order[5:10] != [5, 6, 7, 8, 9]


def test_length_groups_batch_rows_of_similar_length_and_still_visit_each_row_once_per_epoch():
    rows_per_epoch, batch = 200, 4
    lengths = [random.Random(i).randint(5, 120) for i in range(2 * rows_per_epoch)]
    order = list(EpochBlockSampler(rows_per_epoch, 2, seed=3, lengths=lengths, batch_size=batch))
    assert sorted(order[:rows_per_epoch]) == list(range(rows_per_epoch))
    assert sorted(order[rows_per_epoch:]) == list(range(rows_per_epoch, 2 * rows_per_epoch))
    group = batch * EpochBlockSampler.LENGTH_GROUP
    for epoch_start in (0, rows_per_epoch):   # groups start afresh in each epoch
        for start in range(0, rows_per_epoch, group):
            chunk = [lengths[i] for i in order[epoch_start + start:epoch_start + min(start + group, rows_per_epoch)]]
            assert chunk == sorted(chunk, reverse=True)

    def padded(order):
        return sum(batch * max(lengths[i] for i in order[s:s + batch]) - sum(lengths[i] for i in order[s:s + batch])
                   for s in range(0, len(order), batch))

    assert padded(order) < padded(list(EpochBlockSampler(rows_per_epoch, 2, seed=3))) / 3
    assert order != list(EpochBlockSampler(rows_per_epoch, 2, seed=4, lengths=lengths, batch_size=batch))
    with pytest.raises(ValueError):
        EpochBlockSampler(rows_per_epoch, 2, seed=3, lengths=lengths[:10])


def test_training_logs_every_epoch_and_saves_provenance(tiny_adapters, tiny_profile):
    root, results = tiny_adapters
    for task, result in results.items():
        assert list(result.log["epoch"]) == [1, 2]
        assert result.log["valid_loss"].notna().all() and result.log["train_tokens_per_s"].gt(0).all()
        meta = read_adapter_meta(root / task)
        assert meta["task"] == task and meta["profile"] == "tiny"
        assert meta["base_model"] == tiny_profile.llm_for(task).key
        assert meta["config"]["lora_r"] == 64 and len(meta["data_sha256"]) == 16
        assert (root / task / "adapter_model.safetensors").is_file()
        assert not (root / f"{task}.training").exists()  # checkpoints removed once saved


def interrupt_after_first_epoch(monkeypatch):
    """Make the next train_task stop right after its epoch-1 checkpoint; returns the undo."""
    from transformers import TrainerCallback

    class StopAfterFirstEpoch(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            raise KeyboardInterrupt  # the machine went away right after the epoch-1 checkpoint

    original = finetune._trainer_class

    def interrupted_classes():
        trainer_class, log_class = original()

        class Interrupted(trainer_class):
            def __init__(self, *args, callbacks=(), **kwargs):
                super().__init__(*args, callbacks=[*callbacks, StopAfterFirstEpoch()], **kwargs)

        return Interrupted, log_class

    monkeypatch.setattr(finetune, "_trainer_class", interrupted_classes)
    return lambda: monkeypatch.setattr(finetune, "_trainer_class", original)


def test_interrupted_training_resumes_from_its_checkpoint(tiny_profile, small_frame, tmp_path, monkeypatch, capsys):
    config = task_config("summary", "quick", max_steps=-1, epochs=2)
    undo = interrupt_after_first_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train_task("summary", tiny_profile, config, small_frame, out_dir=tmp_path / "summary")
    assert not (tmp_path / "summary").exists()
    assert list((tmp_path / "summary.training" / "checkpoints").glob("checkpoint-*"))
    undo()
    result = train_task("summary", tiny_profile, config, small_frame, out_dir=tmp_path / "summary")
    assert result.steps == 4 and list(result.log["epoch"]) == [1, 2]
    assert "resuming from checkpoint-" in capsys.readouterr().out


@pytest.mark.parametrize("change", ["settings", "data"])
def test_a_checkpoint_of_another_run_is_not_resumed(tiny_profile, small_frame, tmp_path, monkeypatch, capsys, change):
    config = task_config("summary", "quick", max_steps=-1, epochs=2)
    undo = interrupt_after_first_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train_task("summary", tiny_profile, config, small_frame, out_dir=tmp_path / "summary")
    undo()
    capsys.readouterr()
    if change == "settings":
        config = task_config("summary", "quick", max_steps=-1, epochs=2, learning_rate=5e-4)
    else:
        small_frame = small_frame.drop(small_frame.index[0])
    result = train_task("summary", tiny_profile, config, small_frame, out_dir=tmp_path / "summary")
    shown = capsys.readouterr().out
    assert "from another run" in shown and "resuming from" not in shown
    assert list(result.log["epoch"]) == [1, 2] and result.meta["config"] == asdict(config)


def test_bad_requests_are_clear_errors(tiny_profile, small_frame):
    with pytest.raises(OhloraError, match="unknown task 'poem'"):
        task_config("poem")
    with pytest.raises(OhloraError, match="unknown training setting"):
        task_config("memory", "quick", epoch=3)
    with pytest.raises(OhloraError, match="valid split is empty"):
        train_task("memory", tiny_profile, task_config("memory", "quick"), small_frame[small_frame["data_type"] == "train"])


def test_a_tokenizer_that_cannot_spell_the_markers_is_refused(tiny_profile):
    class LossyTokenizer:
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [1, 2]}

        def decode(self, ids):
            return "??"

    with pytest.raises(OhloraError, match="cannot spell the markers"):
        finetune.check_tokenizer_spells_markers(LossyTokenizer(), tiny_profile.llm_for("memory"))


def test_presets_follow_the_original_where_they_say_so():
    for task in TASK_NAMES:
        assert task_config(task, "paper").epochs == TASKS[task].original_epochs
        assert task_config(task, "default").lora_r == 64 and task_config(task, "paper").learning_rate == 3e-4
    # the default preset departs from the original's lr where a study measured (all but the summary)
    assert [task_config(task, "default").learning_rate for task in TASK_NAMES] == [1e-3, 3e-4, 1e-3, 1e-3]
    assert task_config("output_message", "paper").augment and not task_config("memory", "paper").augment


def test_the_training_entry_point_runs_under_accelerate_launch(tiny_profile, tmp_path):
    """Multi-GPU training is `accelerate launch -m ohlora_utils.finetune …`; here the same on one CPU process."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    launcher = Path(sys.executable).with_name("accelerate")
    completed = subprocess.run(
        [str(launcher), "launch", "--cpu", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "-m", "ohlora_utils.finetune", "--profile", "tiny", "--preset", "quick",
         "--task", "memory", "--max-steps", "2", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "[memory] 2 steps" in completed.stdout
    assert read_adapter_meta(tmp_path / "memory")["steps"] == 2


def test_an_adapter_trained_from_the_same_inputs_and_code_is_reused_else_retrained(tiny_profile, small_frame, tmp_path,
                                                                                  monkeypatch, capsys):
    config = task_config("summary", "quick", max_steps=1, epochs=1)
    first = train_task("summary", tiny_profile, config, small_frame, out_dir=tmp_path / "summary")
    assert not first.reused and "training (nothing trained yet)" in capsys.readouterr().out
    again = train_task("summary", tiny_profile, config, small_frame, out_dir=tmp_path / "summary")
    assert again.reused and again.steps == first.steps and again.log.equals(first.log)
    assert "reused" in capsys.readouterr().out
    other_seed = train_task("summary", tiny_profile, replace(config, seed=7), small_frame, out_dir=tmp_path / "summary")
    assert not other_seed.reused and "inputs.config" in capsys.readouterr().out
    monkeypatch.setenv("OHLORA_FORCE_RETRAIN", "1")
    forced = train_task("summary", tiny_profile, replace(config, seed=7), small_frame, out_dir=tmp_path / "summary")
    assert not forced.reused and "OHLORA_FORCE_RETRAIN=1" in capsys.readouterr().out


def test_max_train_rows_trains_on_a_fixed_seeded_sample(small_frame):
    from ohlora_utils.finetune import epoch_rows, task_config

    train = small_frame[small_frame["data_type"] == "train"]
    config = task_config("summary", "quick", epochs=2, max_train_rows=3)
    rows = epoch_rows("summary", train, config)
    assert len(rows) == 6 and rows[:3] == rows[3:]                      # the same 3 rows in each epoch
    assert rows == epoch_rows("summary", train, config)                 # seeded
    assert rows != epoch_rows("summary", train, task_config("summary", "quick", epochs=2, max_train_rows=3, seed=7))
    assert len(epoch_rows("summary", train, task_config("summary", "quick", max_train_rows=100))) == len(train)


def test_keep_best_epoch_saves_the_epoch_with_the_lowest_validation_loss(tiny_profile, small_frame, tmp_path,
                                                                         monkeypatch):
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file

    scripted, snapshots = iter([5.0, 9.0]), {}   # epoch 2 validates worse than epoch 1
    original = finetune._trainer_class

    def scripted_classes():
        trainer_class, log_class = original()

        class ScriptedValidation(trainer_class):
            def evaluation_loop(self, *args, **kwargs):
                output = super().evaluation_loop(*args, **kwargs)
                output.metrics["eval_loss"] = next(scripted)
                snapshots[self.state.global_step] = {k: v.clone() for k, v in get_peft_model_state_dict(self.model).items()}
                return output

        return ScriptedValidation, log_class

    monkeypatch.setattr(finetune, "_trainer_class", scripted_classes)
    config = task_config("summary", "quick", max_steps=-1, epochs=2, keep_best_epoch=True)
    result = train_task("summary", tiny_profile, config, small_frame, out_dir=tmp_path / "summary", resume=False)
    assert list(result.log["valid_loss"]) == [5.0, 9.0] and result.steps == 4
    assert result.meta["kept_step"] == 2
    saved = load_file(tmp_path / "summary" / "adapter_model.safetensors")
    assert all(torch.equal(saved[name], snapshots[2][name]) for name in saved)
    assert any(not torch.equal(saved[name], snapshots[4][name]) for name in saved)
    assert not (tmp_path / "summary.training").exists()


def test_neftune_noise_changes_what_is_learned(tiny_profile, small_frame, tmp_path):
    from safetensors.torch import load_file

    trained = {}
    for alpha in (0.0, 50.0):
        config = task_config("summary", "quick", max_steps=2, neftune_noise_alpha=alpha)
        out = tmp_path / f"alpha{alpha}"
        result = train_task("summary", tiny_profile, config, small_frame, out_dir=out, resume=False)
        trained[alpha] = load_file(out / "adapter_model.safetensors")
        assert result.meta["config"]["neftune_noise_alpha"] == alpha
    assert any(not torch.equal(trained[0.0][name], trained[50.0][name]) for name in trained[0.0])
