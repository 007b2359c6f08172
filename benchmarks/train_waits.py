"""How the training process's OpenMP threads wait: sleeping at once vs a short spin, alone and beside a chat.

A training step (LoRA, batch 2, ~100 tokens) runs a few thousand parallel ops on the trainer's two
threads, many of them small (the LoRA matmuls, norms, the backward's elementwise ops). With sleeping
waits (OMP_WAIT_POLICY=PASSIVE) each op wakes the second thread through the kernel; with a short spin
(GOMP_SPINCOUNT=N: ~N/100 us, then sleep) it is usually still awake. A spin can also take CPU from
whatever shares the machine, so each setting is timed twice:
- alone;
- beside a neighbour that decodes one stream the way the app's chat does (the engine's decoder, its
  own thread choice, the decoder's default short spin), whose tokens/s during the trainer's window is
  reported too: the visitor who chats while a fine-tune runs.

The wait settings are read when torch loads, so every measurement is its own process; settings
alternate round by round so both see the same machine. The trainer is built as
pipeline/local/trainer.py builds it (benchmarks/train_step.py `build_trainer`) and runs the same ten
batches (forward with our LM head, backward, AdamW) twice; the second pass is timed.

    DISTILL_MODEL_DIR=/tmp/distill-studio-models .venv/bin/python benchmarks/train_waits.py [--rounds 3] [--json]

`--settings two_rows,sleeping,one_thread` compares the trainer's two threads as it uses them now (each
step's rows split over two threads, one intra-op thread each) with two intra-op threads on the whole
batch (torch's default) and one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "DISTILL_TRAIN_THREADS")
# "auto": sleeping waits and the trainer's own choice of 2 or 1 threads per step (pipeline/local/train_threads.py);
# "two_rows": each step's rows split over two threads of one intra-op thread each (pipeline/local/row_shards.py).
SETTINGS = {"sleeping": {"OMP_WAIT_POLICY": "PASSIVE"}, "short_spin": {"GOMP_SPINCOUNT": "10000"},
            "one_thread": {"OMP_NUM_THREADS": "1"}, "auto": {"OMP_WAIT_POLICY": "PASSIVE", "DISTILL_TRAIN_THREADS": "auto"},
            "two_rows": {"OMP_WAIT_POLICY": "PASSIVE", "DISTILL_TRAIN_THREADS": "2"}}


def trainer_child() -> dict:
    import torch  # first: OpenMP reads its wait settings when torch loads

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from train_step import build_trainer

    from pipeline import config
    from pipeline.local import train_threads

    trainer, batches = build_trainer("person", 2)
    model = trainer.model
    choice = train_threads.chooser(config.TRAIN_THREADS.get()) if "DISTILL_TRAIN_THREADS" in os.environ else None
    stepper = train_threads.StepThreads(model, choice, sharded=trainer) if choice else None
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train's loop, which this stands in for
    timed: dict = {}
    for rep in range(2):
        start, cpu = time.time(), time.process_time()
        for i, b in enumerate(batches):
            state = SimpleNamespace(global_step=rep * len(batches) + i + 1)
            if stepper:  # as the Trainer calls it around each optimizer step
                stepper.on_step_begin(None, state, None)
            trainer.training_step(model, dict(b))  # forward and backward, split by rows where chosen
            trainer.optimizer.step()
            trainer.optimizer.zero_grad()
            if stepper:
                stepper.on_step_end(None, state, None)
        if rep == 1:
            timed = {"s_per_step": round((time.time() - start) / len(batches), 3),
                     "cpu_s_per_step": round((time.process_time() - cpu) / len(batches), 3),
                     "from": start, "until": time.time()}
    timed["threads"] = dict(stepper.steps_on) if stepper else torch.get_num_threads()
    return timed


def decoder_child() -> None:
    """Decodes one stream after another until killed, printing (time, tokens so far) after each."""
    import torch  # noqa: F401  (first, as above; the decoder keeps the app's default waits)

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from local_decode import _step_rate

    from pipeline.local import threads, weights
    from pipeline.local.engine import load_fast

    decoder = load_fast(weights.base_model_dir())
    chooser = threads.ThreadChooser((1, 2))
    print("ready", flush=True)
    tokens = 0
    while True:
        _step_rate(decoder, 1, chooser, steps=32)
        tokens += 32
        print(time.time(), tokens, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="which of " + ", ".join(SETTINGS))
    parser.add_argument("--trainer-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--decoder-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trainer_child:
        print(json.dumps(trainer_child()))
        return 0
    if args.decoder_child:
        decoder_child()
        return 0
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from machine_facts import machine
    from neighbours import rate_inside, start

    base = {k: v for k, v in os.environ.items() if k not in WAIT_VARS}
    base["PYTHONPATH"] = str(ROOT)
    runs: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for case in ("alone", "beside_chat"):
            for name in args.settings.split(","):
                extra = SETTINGS[name]
                neighbour = (start([sys.executable, __file__, "--decoder-child"], base | {"GOMP_SPINCOUNT": "10000"})
                             if case == "beside_chat" else None)
                try:
                    out = subprocess.run([sys.executable, __file__, "--trainer-child"], env=base | extra, cwd=ROOT,
                                         capture_output=True, text=True, check=True).stdout
                except BaseException:
                    if neighbour:
                        neighbour.kill()
                    raise
                row = json.loads(out.strip().splitlines()[-1])
                window = (row.pop("from"), row.pop("until"))
                if neighbour:
                    row["chat_tok_s"] = rate_inside(neighbour, window)
                runs.setdefault(f"{case}_{name}", []).append(row)
                print(f"{case} {name}: {row}", file=sys.stderr, flush=True)
    medians = {key: {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "threads"}
               for key, rows in runs.items()}
    result = {"machine": machine(), "median": medians, "all_rounds": runs}
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
