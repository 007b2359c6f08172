"""The training process: `python -m pipeline.local.trainer JOB_DIR` (started by jobs.py).

`--standby` instead of JOB_DIR imports first and then waits for its JOB_DIR (pipeline/local/standby.py).

Reads JOB_DIR/spec.json, fine-tunes a LoRA adapter with TRL's SFTTrainer on prompt/completion pairs
(loss on the completion only), prints one JSON line per event on stdout and saves the adapter.
Defaults that worked on this 2-core CPU (docs/ARCHITECTURE.md, last section): r=16 on all linear layers, lr 1e-3 constant.

Precision (pipeline/local/precision.py): where the CPU has native bf16 the frozen weights' matmuls
run in bf16 and everything else in float32 (pipeline/local/frozen_bf16.py); float32 elsewhere. TRL's
SFTConfig defaults to bf16=True (autocast), which on a CPU without native bf16 emulates every matmul
(~15x slower) and where it is native was slower than our casts, so it is always off. The dtype the
frozen matmuls really computed in is observed during training and reported in the "done" line.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import threading
import time
from pathlib import Path

from pipeline import config

STARTED = time.perf_counter()  # imported first thing in the training process (python -m)


def emit(kind: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"kind": kind, **fields}) + "\n")
    sys.stdout.flush()


def _callback(total_steps: int, eval_every: int | None):
    from transformers import TrainerCallback

    class Metrics(TrainerCallback):
        """Turns Trainer logs into OpenAI-like metrics events; a step with validation waits for it."""

        pending: dict | None = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            step = state.global_step
            if "loss" in logs:
                self.pending = {"step": step, "total_steps": total_steps, "train_loss": round(float(logs["loss"]), 4),
                                "train_mean_token_accuracy": round(float(logs.get("mean_token_accuracy", 0.0)), 4)}
                if not (eval_every and (step % eval_every == 0 or step == total_steps)):
                    self._flush()
            elif "eval_loss" in logs and self.pending is not None:
                self.pending["valid_loss"] = round(float(logs["eval_loss"]), 4)
                if "eval_mean_token_accuracy" in logs:
                    self.pending["valid_mean_token_accuracy"] = round(float(logs["eval_mean_token_accuracy"]), 4)
                self._flush()

        def on_step_end(self, args, state, control, **kwargs):
            if eval_every and state.global_step == total_steps:
                control.should_evaluate = True  # the final metrics always carry a validation loss

        def on_train_end(self, args, state, control, **kwargs):
            self._flush()

        def _flush(self):
            if self.pending is None:
                return
            data, self.pending = self.pending, None
            message = f"Step {data['step']}/{total_steps}: training loss={data['train_loss']:.4f}"
            if "valid_loss" in data:
                message += f", validation loss={data['valid_loss']:.4f}"
            emit("metrics", message=message, data=data)

    return Metrics()


def _observe_compute(model) -> dict:
    """Records the dtype a linear layer's matmul really produced during training and how many times it
    ran with gradients on: once per pass of the backbone, or twice if activations were recomputed. Its
    hook runs first, before frozen_bf16's cast of the output back to float32; row shards run it on
    their own threads, hence the lock."""
    import torch

    seen: dict = {"training_forwards": 0}
    layer = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    lock = threading.Lock()

    def hook(_module, _inputs, output):
        if torch.is_grad_enabled():
            with lock:
                seen.setdefault("compute_dtype", str(output.dtype).removeprefix("torch."))
                seen["training_forwards"] += 1

    layer.register_forward_hook(hook, prepend=True)
    return seen


def _forwards_per_pass(seen: dict, trainer) -> float:
    """The observed layer's training forwards per backbone pass: 1.0, or 2.0 with recomputed activations.
    A pass is a step (TRL's trainer) or a row shard of one (ours counts them)."""
    passes = getattr(trainer, "backbone_passes", None) or trainer.state.global_step
    return round(seen["training_forwards"] / max(1, passes), 2)


def _die_with_parent() -> None:
    """A server killed hard (SIGKILL, a test timeout) must not leave this process training for hours."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def main(job_dir: Path, handed_over: float | None = None) -> int:
    """`handed_over`: when a standby process (pipeline/local/standby.py) was given this job; None
    for a process started for it, which has already watched its parent since it started."""
    if handed_over is None:
        _die_with_parent()
    spec = json.loads((job_dir / "spec.json").read_text())
    import torch

    from pipeline.local import train_threads

    threads = train_threads.chooser(config.TRAIN_THREADS.get())
    if threads is not None:
        torch.set_num_threads(threads.candidates[0])
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from pipeline.local import frozen_bf16, precision
    from pipeline.local.sft_head import CompletionHeadSFTTrainer

    # Seconds from this process's start to each phase before the first step, reported in the job's
    # events: what a fine-tune waits for besides training (docs/bench/demo.md).
    # A standby imported before its job came: "handed_over" says when it came (0 for a fresh process),
    # so the wait a job saw is each phase minus it.
    phases = {"handed_over": (handed_over or STARTED) - STARTED, "imports": time.perf_counter() - STARTED}
    choice = precision.choose()
    torch.manual_seed(spec["seed"])
    tokenizer = AutoTokenizer.from_pretrained(spec["model_dir"])
    model = AutoModelForCausalLM.from_pretrained(spec["model_dir"], dtype=torch.float32)
    phases["model"] = time.perf_counter() - STARTED
    train = Dataset.from_list(spec["train"])
    valid = Dataset.from_list(spec["valid"]) if spec["valid"] else None
    total = spec["total_steps"]
    # Validation is a forward pass over the whole validation file: 5 of them (and one at the end) draw
    # the curve; 10 cost the demo's fine-tune ~5% more time for no decision taken on them.
    eval_every = max(1, math.ceil(total / 5)) if valid is not None else None
    sft_args = SFTConfig(
        output_dir=str(job_dir / "trainer_tmp"), num_train_epochs=spec["epochs"],
        per_device_train_batch_size=spec["batch_size"], per_device_eval_batch_size=8,
        learning_rate=spec["learning_rate"], lr_scheduler_type=spec.get("lr_scheduler", "constant"),
        warmup_steps=spec.get("warmup", 0),
        logging_steps=1, save_strategy="no", report_to=[], seed=spec["seed"], use_cpu=True,
        max_length=1024, disable_tqdm=True, dataloader_num_workers=0,
        eval_strategy="steps" if valid is not None else "no", eval_steps=eval_every,
        bf16=False, fp16=False,  # no autocast: bf16 where native is frozen_bf16's casts (below)
        # TRL's SFTConfig turns gradient checkpointing on by default: every step then runs the forward
        # pass twice to save activation memory, which a 135M model on ~50-token examples does not need:
        # off, the same steps give the same losses in 0.70x the time (bf16) / 0.76x (fp32 AVX2)
        # (docs/bench/recipe.md). The spec can turn it back on (benchmarks/local_train.py measures both).
        gradient_checkpointing=bool(spec.get("gradient_checkpointing", False)),
        prediction_loss_only=True,  # validation needs the loss (and token accuracy), never the logits
    )
    # LoRA targets and layers: all linear layers of every block unless the spec (a benchmark) says otherwise.
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=spec.get("lora_targets", "all-linear"),
                      layers_to_transform=spec.get("lora_layers"), task_type="CAUSAL_LM")
    # Logits only at the completion positions (pipeline/local/sft_head.py); TRL's head scores every position.
    trainer_cls = CompletionHeadSFTTrainer if spec.get("completion_logits", True) else SFTTrainer
    trainer = trainer_cls(model=model, args=sft_args, train_dataset=train, eval_dataset=valid,
                         processing_class=tokenizer, peft_config=lora, callbacks=[_callback(total, eval_every)])
    # Threads per step, measured (pipeline/local/train_threads.py); DISTILL_TRAIN_THREADS=N fixes them.
    # With our trainer a step on N threads splits its rows over N worker threads (pipeline/local/row_shards.py).
    sharded = trainer if isinstance(trainer, CompletionHeadSFTTrainer) else None
    stepper = train_threads.StepThreads(trainer.model, threads, sharded=sharded) if threads is not None else None
    if stepper is not None:
        trainer.add_callback(stepper)
    seen = _observe_compute(trainer.model)
    if choice.train == "bf16":
        frozen_bf16.use_in(trainer)
    phases["data"] = time.perf_counter() - STARTED  # SFTTrainer wrapped the model and tokenized the data
    waited = {name: at - phases["handed_over"] for name, at in phases.items() if name != "handed_over"}
    ready = ", ".join(f"{name} {at:.1f} s" for name, at in waited.items())
    if handed_over is not None:
        ready += f" from its handover to a standby process started {phases['handed_over']:.0f} s earlier"
    emit("message", message=f"Training {len(spec['train'])} examples for {spec['epochs']} epochs ({total} steps); "
                            f"computing {precision.training_text(choice)} ({choice.reason}); ready after {ready}",
         data={"ready_s": {k: round(v, 2) for k, v in phases.items()}})
    trainer.train()
    phases["trained"] = time.perf_counter() - STARTED
    trainer.model.save_pretrained(spec["adapter_dir"])
    lengths = [len(tokenizer.apply_chat_template(ex["prompt"] + ex["completion"], tokenize=True, return_dict=False))
               for ex in spec["train"]]
    weights = sorted({str(p.dtype).removeprefix("torch.") for p in trainer.model.parameters()})
    # The learning rate each step used: the schedule really applied (tests, docs/bench/recipe.md).
    rates = [float(f"{h['learning_rate']:.3g}") for h in trainer.state.log_history if "learning_rate" in h]
    emit("done", trained_tokens=int(sum(lengths) * spec["epochs"]), precision=choice.train,
         compute_dtype=seen.get("compute_dtype"), weight_dtypes=weights,
         head_rows=getattr(trainer, "head_rows", None), forwards_per_step=_forwards_per_pass(seen, trainer),
         learning_rates=rates,
         phases_s={k: round(v, 2) for k, v in phases.items()},
         thread_steps={str(n): c for n, c in sorted(stepper.steps_on.items())} if stepper else None,
         # Median seconds of a step on each count (the first step left out) and the validation passes'
         # seconds in all: where a fine-tune's time went (docs/bench/demo.md).
         thread_step_s={str(n): round(statistics.median(s), 3) for n, s in sorted(stepper.step_seconds.items())}
         if stepper else None,
         validation_s=round(sum(h.get("eval_runtime", 0.0) for h in trainer.state.log_history), 2))
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--standby"]:  # started before its job by pipeline/local/standby.py
        from pipeline.local.standby import serve

        sys.exit(serve(main, _die_with_parent))
    sys.exit(main(Path(sys.argv[1])))
