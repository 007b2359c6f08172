"""Fictional-person fine-tune: a plain TRL SFTTrainer fp32 LoRA run vs our trainer, in ONE run.

Both train SmolLM2-135M-Instruct on data/samples/person_train.jsonl (53 examples) in a fresh process
each (wall time = process start, imports, model load and training, as a user waits for it), then the
same scorer asks the 18 held-out reworded questions of data/benchmarks/person_bench.jsonl (greedy,
fp32, adapter merged) for each adapter. The machine is shared, so the two runs alternate
(`--rounds`) and the load average is recorded around each.

- baseline: today's recipe in plain TRL: `SFTConfig(bf16=False)`, LoRA r=16 all-linear, lr 1e-3
  constant, batch 4, the auto epochs of before this work (ceil(180/53) = 4), no validation.
- ours: `python -m pipeline.local.trainer` with the spec the job runner writes for "auto".

    .venv/bin/python benchmarks/local_train.py [--rounds 1] [--json OUT.json]
    .venv/bin/python benchmarks/local_train.py --task classifier --recipes today,ours  # tickets demo, label scoring
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 .venv/bin/python benchmarks/local_train.py  # AVX2-only CPU
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pipeline.local.qweights import LINEAR_MODULES  # noqa: E402  (the parent process imports torch anyway)

TRAIN = ROOT / "data/samples/person_train.jsonl"
BENCH = ROOT / "data/benchmarks/person_bench.jsonl"
SEED = 7


def machine() -> dict:
    import torch

    from pipeline.local import precision

    facts = precision.cpu_facts()
    return {"cpu": facts["cpu"], "torch_cpu_capability": facts["aten_capability"],
            "onednn_max_cpu_isa": facts["onednn_max_isa"] or "(unset)", "nproc": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "precision": precision.summary(precision.choose())}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def baseline_child(job_dir: Path) -> int:
    """The plain TRL run (what a user of TRL writes; fp32 because bf16 is emulated on many CPUs)."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    spec = json.loads((job_dir / "spec.json").read_text())
    torch.manual_seed(spec["seed"])
    tokenizer = AutoTokenizer.from_pretrained(spec["model_dir"])
    model = AutoModelForCausalLM.from_pretrained(spec["model_dir"], dtype=torch.float32)
    config = SFTConfig(output_dir=str(job_dir / "tmp"), num_train_epochs=spec["epochs"],
                       per_device_train_batch_size=spec["batch_size"], learning_rate=spec["learning_rate"],
                       lr_scheduler_type="constant", warmup_steps=0, logging_steps=1, save_strategy="no",
                       report_to=[], seed=spec["seed"], use_cpu=True, bf16=False, disable_tqdm=True)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(spec["train"]),
                         processing_class=tokenizer, peft_config=lora)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    trainer.model.save_pretrained(spec["adapter_dir"])
    print(json.dumps({"kind": "done", "first_loss": losses[0], "last_loss": losses[-1], "steps": len(losses)}))
    return 0


# Named recipes for --recipes ("baseline" is plain TRL, "ours" is what the job runner resolves "auto" to).
# "today" is the auto recipe before docs/bench/recipe.md; the others are candidates it measured.
RECIPES: dict[str, dict] = {
    "today": {"epochs": 2, "batch_size": 2, "learning_rate": 1e-3, "lr_scheduler": "constant", "warmup": 0},
    "e1b1": {"epochs": 1, "batch_size": 1, "learning_rate": 2e-3, "lr_scheduler": "linear", "warmup": 0.1},
    "e1b2": {"epochs": 1, "batch_size": 2, "learning_rate": 2e-3, "lr_scheduler": "linear", "warmup": 0.1},
    "e2lin": {"epochs": 2, "batch_size": 2, "learning_rate": 1e-3, "lr_scheduler": "linear", "warmup": 0.1},
    "e2b4": {"epochs": 2, "batch_size": 4, "learning_rate": 2e-3, "lr_scheduler": "linear", "warmup": 0.1},
    "e3b8": {"epochs": 3, "batch_size": 8, "learning_rate": 3e-3, "lr_scheduler": "linear", "warmup": 0.1},
    "e4b8": {"epochs": 4, "batch_size": 8, "learning_rate": 2e-3, "lr_scheduler": "linear", "warmup": 0.1},
    "e2b4c": {"epochs": 2, "batch_size": 4, "learning_rate": 2e-3, "lr_scheduler": "constant", "warmup": 0},
    "e3b4": {"epochs": 3, "batch_size": 4, "learning_rate": 1.5e-3, "lr_scheduler": "constant", "warmup": 0},
}
# Trainer knobs added to a recipe with "+" (`--recipes trlhead,trlhead+gc,ours`): each changes one thing.
LAYERS = 30  # SmolLM2-135M's blocks
# peft takes `layers_to_transform` only with named modules, not "all-linear": the model's linear layers.
ALL_LINEAR = list(LINEAR_MODULES)
VARIANTS: dict[str, dict] = {
    "gc": {"gradient_checkpointing": True},  # TRL's default before main 4b6fcd0: the forward runs twice
    "trlhead": {"completion_logits": False},  # TRL's LM head: logits, entropy at every position
    "attn": {"lora_targets": ["q_proj", "k_proj", "v_proj", "o_proj"]},  # no LoRA on the MLP
    "upper": {"lora_targets": ALL_LINEAR, "lora_layers": list(range(LAYERS // 2, LAYERS))},  # LoRA on the upper half: backward stops there
    "upper2": {"lora_targets": ALL_LINEAR, "lora_layers": list(range(LAYERS // 3, LAYERS))},  # LoRA on the upper two thirds
    "t1": {"threads": 1},  # DISTILL_TRAIN_THREADS=1
    "noval": {"no_valid": True},  # no validation passes
    "fp32": {"precision": "fp32"},  # DISTILL_PRECISION=fp32: no bf16 autocast even where bf16 is native
}
TRAINER_KEYS = ("gradient_checkpointing", "completion_logits", "lora_targets", "lora_layers", "threads", "precision")
TASKS = {"person": (TRAIN, BENCH), "person_demo": (TRAIN, BENCH),
         "classifier": (ROOT / "data/samples/tickets_train.jsonl", ROOT / "data/benchmarks/tickets_bench.jsonl")}


def task_data(task: str) -> tuple[list[dict], list[dict], list[dict]]:
    """train, validation, benchmark: the demos hold 10% out for validation (seed 0) as
    pipeline/demo/actions.py does (classifier, person_demo); "person" trains on the whole sample,
    no validation (the figures of docs/bench/recipe.md before 2026-11-30 22:00)."""
    from pipeline.dataset import split_examples
    from pipeline.local.dataset import read_examples

    train_path, bench_path = TASKS[task]
    examples = read_examples(train_path.read_bytes())
    bench = [json.loads(line) for line in bench_path.read_text().splitlines() if line.strip()]
    if task in ("classifier", "person_demo"):
        train, valid = split_examples(examples, 0.1, seed=0)
        return list(train), list(valid), bench
    return examples, [], bench


def recipe(name: str, n: int, override: dict | None = None) -> dict:
    from pipeline.local.dataset import auto_batch_size, resolved_auto_epochs
    from pipeline.local.jobs import recipe_spec

    if "+" in name:
        base, *extra = name.split("+")
        hp = recipe(base, n, override)
        for v in extra:
            hp.update(VARIANTS[v])
        return hp
    if name in VARIANTS:
        return {**recipe("ours", n, override), **VARIANTS[name]}
    if name == "baseline":
        return {"epochs": min(8, max(3, math.ceil(180 / n))), "batch_size": 4, "learning_rate": 1e-3}
    if name == "ours":
        hp = {"epochs": resolved_auto_epochs(n), "batch_size": auto_batch_size(n), **recipe_spec(1.0)}
        return {**hp, **(override or {})}
    return dict(RECIPES[name])


def specs(model_dir: Path, work: Path, names: list[str], train: list[dict], valid: list[dict],
          override: dict | None = None) -> dict[str, Path]:
    """spec.json for each contestant; "ours" is resolved exactly as the job runner resolves "auto"
    (`override` replaces some of ours, to try another rule before changing it)."""
    n = len(train)
    out = {}
    for name in names:
        hp = recipe(name, n, override)
        d = work / name
        d.mkdir(parents=True)
        steps = math.ceil(n / hp["batch_size"]) * hp["epochs"]
        spec = {"model_dir": str(model_dir), "train": train,
                "valid": [] if name == "baseline" or hp.pop("no_valid", False) else valid,
                "seed": SEED, "adapter_dir": str(d / "adapter"), "total_steps": steps, **hp}
        (d / "spec.json").write_text(json.dumps(spec))
        out[name] = d
    return out


def train(name: str, job_dir: Path) -> dict:
    cmd = ([sys.executable, str(Path(__file__).resolve()), "--baseline-child", str(job_dir)] if name == "baseline"
           else [sys.executable, "-m", "pipeline.local.trainer", str(job_dir)])
    spec = json.loads((job_dir / "spec.json").read_text())
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "PYTHONPATH": str(ROOT)}
    if spec.get("threads"):
        env["DISTILL_TRAIN_THREADS"] = str(spec["threads"])
    if spec.get("precision"):
        env["DISTILL_PRECISION"] = spec["precision"]
    before = load()
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith('{"kind": ')]  # ours; TRL prints dicts
    keys = ("epochs", "batch_size", "learning_rate", "lr_scheduler", "warmup", *TRAINER_KEYS)
    result = {"wall_s": round(wall, 1), "load_before": before, "load_after": load(),
              "valid": len(spec["valid"]), **{k: spec[k] for k in keys if k in spec}}
    done = next(x for x in lines if x.get("kind") == "done")
    if "phases_s" in done:  # training seconds: from "ready" (imports, model, tokenizing done) to trained
        result["train_s"] = round(done["phases_s"]["trained"] - done["phases_s"]["data"], 1)
    metrics = [x["data"] for x in lines if x.get("kind") == "metrics"]
    if metrics:
        result.update(steps=metrics[-1]["step"], first_loss=metrics[0]["train_loss"],
                      last_losses=[m["train_loss"] for m in metrics[-3:]])
    result.update({k: v for k, v in done.items() if k not in ("kind",)})
    return result


def score(model_dir: Path, adapter: Path, bench: list[dict]) -> tuple[int, list[str]]:
    """Greedy answers of the merged model in fp32 (the same scorer for every adapter). Items with
    "scoring": "label" are scored as the Evaluate tab does (pipeline.evaluate.tasks.score_label);
    the others pass when the expected text is in the answer."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pipeline.evaluate.tasks import score_label

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload().eval()
    prompts = [tokenizer.apply_chat_template(b["messages"], tokenize=False, add_generation_prompt=True) for b in bench]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**batch, max_new_tokens=60, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    answers = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    right = sum(score_label(a, b["expected"], b.get("labels", ())).correct if b.get("scoring") == "label"
                else b["expected"].lower() in a.lower() for b, a in zip(bench, answers, strict=True))
    return right, answers


def main() -> int:
    global SEED
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="person")
    parser.add_argument("--recipes", default="baseline,ours",
                        help=f"comma-separated contestants: baseline, ours, {', '.join(RECIPES)}; "
                             f"+ adds a trainer knob ({', '.join(VARIANTS)}), e.g. ours+gc")
    parser.add_argument("--rounds", type=int, default=1, help="contestant sets, alternating order")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--ours-epochs", type=int, help="try another epoch count for ours")
    parser.add_argument("--ours-batch", type=int, help="try another batch size for ours")
    parser.add_argument("--ours-lr", type=float, help="try another learning rate for ours")
    parser.add_argument("--baseline-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_child:
        return baseline_child(args.baseline_child)
    SEED = args.seed
    from pipeline.local.weights import base_model_dir

    model_dir = base_model_dir()
    train_rows, valid_rows, bench = task_data(args.task)
    result: dict = {"machine": machine(), "task": args.task, "seed": SEED, "rounds": []}
    print(json.dumps(result["machine"]), args.task, "seed", SEED, flush=True)
    names = args.recipes.split(",")
    override = {k: v for k, v in (("epochs", args.ours_epochs), ("batch_size", args.ours_batch),
                                      ("learning_rate", args.ours_lr)) if v}
    for r in range(args.rounds):
        row = {}
        dirs = specs(model_dir, Path(tempfile.mkdtemp(prefix="distill-train-bench-")), names, train_rows,
                     valid_rows, override)
        for name in names if r % 2 == 0 else names[::-1]:
            row[name] = train(name, dirs[name])
            right, answers = score(model_dir, Path(dirs[name] / "adapter"), bench)
            row[name].update(correct=right, of=len(bench), sample_answers=answers[:3])
            shown = {k: v for k, v in row[name].items() if k not in ("sample_answers", "learning_rates")}
            print(name, json.dumps(shown), flush=True)
        first = names[0]
        for name in names[1:]:
            if "train_s" in row[first] and "train_s" in row[name]:
                print(f"train_s {name}/{first}", round(row[name]["train_s"] / row[first]["train_s"], 2), flush=True)
            if all("train_s" in row[x] and "steps" in row[x] for x in (first, name)):
                per_step = [row[x]["train_s"] / row[x]["steps"] for x in (first, name)]
                print(f"s/step {name}/{first}", round(per_step[1] / per_step[0], 2), flush=True)
            print(f"wall_s {name}/{first}", round(row[name]["wall_s"] / row[first]["wall_s"], 2), flush=True)
        result["rounds"].append(row)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
