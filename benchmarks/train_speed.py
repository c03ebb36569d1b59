"""Training speed of the reply task's LoRA step: each speed lever of this study's trainer, side by side.

Usage: ``.venv/bin/python benchmarks/train_speed.py [--profile embedded] [--steps 20] [--task output_message]``

Each variant trains in its own process (so its peak memory is its own) for ``--steps`` steps of
``--batch-size`` rows, drawn from the same train rows with the same seed; the first two steps are
warm-up and not timed. Reported: seconds per step, train tokens per second (non-padding tokens of the
timed steps), the share of padded positions, peak resident memory, the first step's loss, and the
speed-up in tokens per second against the first variant. The cumulative variants:

- ``fp32``: the trainer as it was before the speed levers — completion-positions loss, fp32 weights.
- ``bf16_weights``: + frozen base weights stored in bf16 (LoRA weights and AdamW stay fp32).
- ``study_vocabulary``: + the training loss over the study vocabulary's rows of the output layer.
- ``length_groups``: + batches of rows of similar length.
- ``cheap_dropout``: + LoRA dropout masks from cheaper random draws.
- ``bf16_autocast``: + bf16 autocast for the LoRA matmuls (all levers: the default preset).
- ``no_dropout``: the levers up to ``length_groups`` with LoRA dropout 0 instead of the original's 0.05
  (measured only: not adopted).

And two references for plain TRL: ``stock`` (SFTTrainer defaults, gradient checkpointing on, TRL's own
loss, fp32) and ``stock_no_gc`` (the same without gradient checkpointing); pass them with ``--variants``.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time
from dataclasses import replace

# (variant, the LoraTrainConfig switch it turns on): each variant keeps every switch before it on
CUMULATIVE = [("fp32", None), ("bf16_weights", "bf16_base_weights"), ("study_vocabulary", "study_vocabulary_loss"),
              ("length_groups", "group_by_length"), ("cheap_dropout", "cheap_dropout_masks"),
              ("bf16_autocast", "bf16_autocast")]
SWITCHES = [switch for _, switch in CUMULATIVE if switch]
LEVERS = {variant: {switch: switch in SWITCHES[:index] for switch in SWITCHES}   # variant → config overrides
          for index, (variant, _) in enumerate(CUMULATIVE)}
LEVERS["no_dropout"] = {**LEVERS["length_groups"], "lora_dropout": 0.0}
STOCK = {"stock": True, "stock_no_gc": False}   # variant → gradient checkpointing


def run_variant(variant: str, profile_name: str, task: str, steps: int, batch_size: int, queue) -> None:
    import torch
    from datasets import Dataset, disable_progress_bars
    from peft import LoraConfig, get_peft_model
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from ohlora_utils.data import load_fine_tuning
    from ohlora_utils.devices import trainer_device_args
    from ohlora_utils.finetune import (TARGET_MODULES, _trainer_class, base_weights_dtype, epoch_rows,
                                       epoch_sampler, task_config, use_cheap_dropout)
    from ohlora_utils.models import load_causal_lm
    from ohlora_utils.profiles import get_profile
    from ohlora_utils.vocabulary import study_token_ids

    disable_progress_bars()
    torch.manual_seed(0)
    profile = get_profile(profile_name)
    source = profile.llm_for(task)
    config = task_config(task, "default", **LEVERS.get(variant, LEVERS["fp32"]))
    model, tokenizer = load_causal_lm(source, dtype=base_weights_dtype(config))
    model = get_peft_model(model, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                             lora_dropout=config.lora_dropout, init_lora_weights="gaussian",
                                             target_modules=list(TARGET_MODULES[source.architecture]),
                                             task_type="CAUSAL_LM"))
    if config.cheap_dropout_masks:
        use_cheap_dropout(model)
    frame = load_fine_tuning()
    rows = epoch_rows(task, frame[frame["data_type"] == "train"], config)
    times, tokens, padded, losses = [], [], [], []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.perf_counter() - self.start)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    common = dict(output_dir="/tmp/ohlora-bench", max_steps=steps, per_device_train_batch_size=batch_size,
                  learning_rate=config.learning_rate, logging_steps=1, save_strategy="no", report_to=[],
                  **trainer_device_args(cpu_bf16=config.bf16_autocast), completion_only_loss=True, disable_tqdm=True, seed=0,
                  max_length=config.max_length, dataloader_num_workers=0)
    sampler = epoch_sampler(rows, replace(config, batch_size=batch_size), seed=0)

    class Counting:
        """Counts the non-padding and the padded positions of every batch the loss sees."""

        def compute_loss(self, model, inputs, *args, **kwargs):
            mask = inputs["attention_mask"]
            tokens.append(int(mask.sum()))
            padded.append(mask.numel() - int(mask.sum()))
            return super().compute_loss(model, inputs, *args, **kwargs)

    if variant in STOCK:
        class SameOrderSFTTrainer(Counting, SFTTrainer):
            def _get_train_sampler(self, *args, **kwargs):
                return sampler

        trainer = SameOrderSFTTrainer(model=model, args=SFTConfig(activation_checkpointing=STOCK[variant], **common),
                                      processing_class=tokenizer, train_dataset=Dataset.from_list(rows),
                                      callbacks=[Clock()])
    else:
        trainer_class, _ = _trainer_class()

        class CountingTrainer(Counting, trainer_class):
            pass

        vocabulary = study_token_ids(tokenizer) if config.study_vocabulary_loss else None
        trainer = CountingTrainer(model=model, args=SFTConfig(activation_checkpointing=False, **common),
                                  processing_class=tokenizer, train_dataset=Dataset.from_list(rows),
                                  epoch_sampler=sampler, loss_vocabulary=vocabulary, callbacks=[Clock()])

    trainer.train()
    timed = sum(times[2:])
    queue.put({"variant": variant, "s_per_step": timed / len(times[2:]), "tokens_per_s": sum(tokens[2:]) / timed,
               "padded": sum(padded[2:]) / (sum(padded[2:]) + sum(tokens[2:])), "first_loss": losses[0],
               "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="embedded")
    parser.add_argument("--task", default="output_message")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--variants", default=",".join(LEVERS), help=f"comma-separated, from {', '.join([*LEVERS, *STOCK])}")
    args = parser.parse_args()
    unknown = set(args.variants.split(",")) - set(LEVERS) - set(STOCK)
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(sorted(unknown))}")
    context = mp.get_context("spawn")
    results = []
    for variant in args.variants.split(","):
        queue = context.Queue()
        process = context.Process(target=run_variant, args=(variant, args.profile, args.task, args.steps,
                                                              args.batch_size, queue))
        process.start()
        results.append(queue.get())
        process.join()
        print(json.dumps(results[-1]), flush=True)
    baseline = results[0]["tokens_per_s"]
    print(f"\nprofile {args.profile}, task {args.task}, batch {args.batch_size}, {args.steps} steps (2 warm-up)")
    print(f"{'variant':16s} {'s/step':>7s} {'tokens/s':>9s} {'padded':>7s} {'peak GB':>8s} {'1st loss':>9s} {'speed-up':>8s}")
    for r in results:
        print(f"{r['variant']:16s} {r['s_per_step']:7.2f} {r['tokens_per_s']:9.1f} {r['padded']:7.1%} "
              f"{r['peak_rss_gb']:8.2f} {r['first_loss']:9.4f} {r['tokens_per_s'] / baseline:7.2f}×")


if __name__ == "__main__":
    main()
