"""Where one training step's time goes: forward / backward / optimizer, for each way of taking the loss.

Builds the trainer as pipeline/local/trainer.py does (LoRA r=16 all-linear, the precision the CPU
gets: bf16 matmuls of the frozen weights where native, no gradient checkpointing) on the
fictional-person sample, then times the same batches with:
- trl: TRL 1.16 SFTTrainer.compute_loss (its chunked LM head: every position, entropy, top-1);
- ours: pipeline/local/sft_head.py (logits only at the completion positions);
- full_logits: the model's own forward with labels (all logits, transformers' loss);
- backbone: the transformer blocks alone (no LM head: the floor for any head).
Each variant runs over the same 10 batches twice (the second pass is printed last); the optimizer is
the trainer's AdamW. The machine is shared: compare variants inside one run only.

    DISTILL_MODEL_DIR=/tmp/distill-studio-models .venv/bin/python benchmarks/train_step.py [--task classifier] [--batch 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build_trainer(task: str, batch: int):
    """(trainer, ten batches) built as pipeline/local/trainer.py builds its trainer (LoRA r=16
    all-linear, the precision the CPU gets, no gradient checkpointing), optimizer ready."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    from pipeline.local import frozen_bf16, precision
    from pipeline.local.dataset import read_examples
    from pipeline.local.sft_head import CompletionHeadSFTTrainer
    from pipeline.local.weights import base_model_dir

    data = {"person": "data/samples/person_train.jsonl", "classifier": "data/samples/tickets_train.jsonl"}[task]
    examples = read_examples((ROOT / data).read_bytes())
    model_dir, choice = base_model_dir(), precision.choose()
    print(f"{task} batch {batch}; {choice.train}; {torch.backends.cpu.get_cpu_capability()}; "
          f"threads {torch.get_num_threads()}; load {os.getloadavg()[0]:.2f}", flush=True)
    torch.manual_seed(7)
    config = SFTConfig(output_dir=tempfile.mkdtemp(prefix="distill-train-step-"), per_device_train_batch_size=batch,
                       learning_rate=1e-3, report_to=[], use_cpu=True, max_length=1024, disable_tqdm=True,
                       bf16=False, fp16=False, gradient_checkpointing=False, save_strategy="no")
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = CompletionHeadSFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32), args=config,
        train_dataset=Dataset.from_list(examples), processing_class=AutoTokenizer.from_pretrained(model_dir),
        peft_config=lora)
    if choice.train == "bf16":
        frozen_bf16.use_in(trainer)
    trainer.model.train()
    trainer.create_optimizer_and_scheduler(num_training_steps=100)
    return trainer, [b for _, b in zip(range(12), trainer.get_train_dataloader(), strict=False)][2:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("person", "classifier"), default="person")
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args()
    from trl import SFTTrainer

    trainer, batches = build_trainer(args.task, args.batch)
    model = trainer.model
    inner = model.get_base_model()

    def backbone(m, b):
        out = inner.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], use_cache=False)
        return out.last_hidden_state.float().pow(2).mean()

    variants = {
        "trl": lambda m, b: SFTTrainer.compute_loss(trainer, m, dict(b)),
        "ours": lambda m, b: trainer.compute_loss(m, dict(b)),
        "full_logits": lambda m, b: m(**b, use_cache=False).loss,
        "backbone": backbone,
    }
    for rep in range(2):
        for name, fn in variants.items():
            spent = [0.0, 0.0, 0.0]
            for b in batches:
                t0 = time.perf_counter()
                with trainer.accelerator.autocast():
                    loss = fn(model, b)
                t1 = time.perf_counter()
                loss.backward()
                t2 = time.perf_counter()
                trainer.optimizer.step()
                trainer.optimizer.zero_grad()
                spent = [s + d for s, d in zip(spent, (t1 - t0, t2 - t1, time.perf_counter() - t2), strict=True)]
            per = [round(s / len(batches), 3) for s in spent]
            print(f"pass {rep + 1} {name:12s} forward {per[0]} s, backward {per[1]} s, optimizer {per[2]} s, "
                  f"step {sum(per):.3f} s (load {os.getloadavg()[0]:.2f})", flush=True)
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    scored = sum(int((b["labels"][:, 1:] != -100).sum()) for b in batches)
    print(f"{tokens / len(batches):.0f} tokens per batch, {scored / tokens:.0%} of them completion (loss) tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
