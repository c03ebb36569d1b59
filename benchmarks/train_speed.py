"""Training speed: this study's LoRA step against plain SFTTrainer, same model, data, batch and LoRA.

Usage: ``.venv/bin/python benchmarks/train_speed.py [--profile embedded] [--steps 12] [--task output_message]``

Each variant trains in its own process (so its peak memory is its own) for ``--steps`` steps on the same
rows in the same order; the first two steps are warm-up and not timed. Reported: seconds per step,
train tokens per second, peak resident memory, the first step's loss (the variants must agree: same
loss, computed differently), and the speed-up ratio against the baseline. Variants:

- ``stock``: plain SFTTrainer defaults (gradient checkpointing on, TRL's own loss); only what a CPU
  requires is changed (no bf16).
- ``stock_no_gc``: the same with gradient checkpointing off (the first thing to switch off on a CPU).
- ``ours``: this study's trainer — gradient checkpointing off, output layer only at completion positions.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time


def run_variant(variant: str, profile_name: str, task: str, steps: int, batch_size: int, queue) -> None:
    import torch
    from datasets import Dataset, disable_progress_bars
    from peft import LoraConfig, get_peft_model
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from ohlora_utils.data import load_fine_tuning
    from ohlora_utils.finetune import TARGET_MODULES, EpochBlockSampler, _trainer_class, task_config, task_rows
    from ohlora_utils.models import load_causal_lm
    from ohlora_utils.profiles import get_profile

    disable_progress_bars()
    torch.manual_seed(0)
    profile = get_profile(profile_name)
    source = profile.llm_for(task)
    model, tokenizer = load_causal_lm(source)
    config = task_config(task, "default")
    model = get_peft_model(model, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                                             lora_dropout=config.lora_dropout, init_lora_weights="gaussian",
                                             target_modules=list(TARGET_MODULES[source.architecture]),
                                             task_type="CAUSAL_LM"))
    frame = load_fine_tuning()
    rows = task_rows(task, frame[frame["data_type"] == "train"])[: steps * batch_size]
    times, losses = [], []

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
                  bf16=False, use_cpu=True, completion_only_loss=True, disable_tqdm=True, seed=0,
                  max_length=config.max_length, dataloader_num_workers=0)
    sampler = EpochBlockSampler(len(rows), 1, 0)  # every variant sees the same rows in the same order
    if variant == "ours":
        trainer_class, _ = _trainer_class()
        trainer = trainer_class(model=model, args=SFTConfig(activation_checkpointing=False, **common),
                                processing_class=tokenizer, train_dataset=Dataset.from_list(rows),
                                epoch_sampler=sampler, callbacks=[Clock()])
    else:
        class SameOrderSFTTrainer(SFTTrainer):
            def _get_train_sampler(self, *args, **kwargs):
                return sampler

        trainer = SameOrderSFTTrainer(model=model, args=SFTConfig(activation_checkpointing=(variant == "stock"),
                                                                  **common),
                                      processing_class=tokenizer, train_dataset=Dataset.from_list(rows),
                                      callbacks=[Clock()])
        trainer.tokens_seen = None
    trainer.train()
    timed = times[2:]
    tokens = sum(len(tokenizer(r["prompt"] + r["completion"])["input_ids"]) for r in rows[2 * batch_size:])
    queue.put({"variant": variant, "s_per_step": sum(timed) / len(timed),
               "tokens_per_s": tokens / sum(timed), "first_loss": losses[0],
               "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="embedded")
    parser.add_argument("--task", default="output_message")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--variants", default="stock,stock_no_gc,ours")
    args = parser.parse_args()
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
    baseline = results[0]["s_per_step"]
    print(f"\nprofile {args.profile}, task {args.task}, batch {args.batch_size}, {args.steps} steps (2 warm-up)")
    print(f"{'variant':12s} {'s/step':>7s} {'tokens/s':>9s} {'peak GB':>8s} {'1st loss':>9s} {'speed-up':>8s}")
    for r in results:
        print(f"{r['variant']:12s} {r['s_per_step']:7.2f} {r['tokens_per_s']:9.1f} {r['peak_rss_gb']:8.2f} "
              f"{r['first_loss']:9.4f} {baseline / r['s_per_step']:7.2f}×")


if __name__ == "__main__":
    main()
