"""How OpenMP threads wait between ops, and the decoder's speed: sleeping at once vs a short spin.

A decode step is ~150 short parallel ops; with two threads, each op wakes the second thread. With
sleeping waits (OMP_WAIT_POLICY=PASSIVE) that wake-up is a futex round trip; with a short spin
(GOMP_SPINCOUNT=N: spin ~N/100 us, then sleep; opt-in, pipeline/local/__init__.py) the
thread is usually still awake. The wait policy is read once when torch loads, so each setting runs in
its own process, alternating settings round by round so all see the same machine load. Each process
times the engine's decoder (its cached conversion: pipeline/local/engine.py `load_fast`) on 1 and 2
threads and on the engine's per-step choice ("auto"; "auto64" is that choice without the rarer
re-measurement of a much slower count, pipeline/local/threads.py FAR; "auto1" is the rule before
INITIAL_SAMPLES and WINDOW: a running average of step times, the first one step), for one stream and
three decoded together, with `_step_rate` from benchmarks/local_decode.py.

    .venv/bin/python benchmarks/decode_waits.py [--rounds 3] [--spins 10000] [--json] [--contend 2]

`--contend N` runs a neighbour beside each measuring process, as a fine-tune or another visitor's
work shares a Space: fp32 matmuls on N threads with sleeping waits (as the training subprocess
gets). Its own rate is reported too (matmuls/s while each setting decoded): a wait setting that
spins takes CPU from the neighbour, which the decoder's rate alone does not show.
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

ROOT = Path(__file__).resolve().parent.parent
WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
STEPS = 320  # per measurement: long enough for FAR_EVERY re-measurements to happen in it


def child() -> dict:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch  # first: OpenMP reads its wait settings when torch loads (local_decode sets one for HTTP runs)
    from local_decode import _step_rate

    from pipeline.local import threads, weights
    from pipeline.local.engine import load_fast

    decoder = load_fast(weights.base_model_dir())
    rates: dict = {"decoding_from": time.time()}
    # "auto": the engine's chooser; "auto64": the rule before threads.FAR (every other count re-measured
    # every EXPLORE_EVERY steps, however slow it was), fresh choosers taking turns with it.
    # "auto1": the rule before threads.INITIAL_SAMPLES and WINDOW (a running average, first one step's time).
    choosers = {"auto": lambda: threads.ThreadChooser((1, 2)),
                "auto64": lambda: threads.ThreadChooser((1, 2), far_every=threads.EXPLORE_EVERY),
                "auto1": lambda: threads.ThreadChooser((1, 2), initial_samples=1, window=0)}
    for streams in (1, 3):
        for count in (1, 2, "auto", "auto64", "auto1"):
            used = choosers[count]() if count in choosers else count
            rates[f"{count}thr_{streams}streams"] = round(_step_rate(decoder, streams, used, steps=STEPS)[0], 1)
    torch.set_num_threads(1)
    rates["decoding_until"] = time.time()
    return rates


NEIGHBOUR = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
a, done, said = torch.randn(512, 512), 0, time.time()
print("ready", flush=True)
while True:
    a @ a
    done += 1
    if time.time() - said >= 0.2:
        said = time.time()
        print(said, done, flush=True)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spins", default="10000", help="comma-separated GOMP_SPINCOUNT values to compare")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--contend", type=int, default=0, help="threads of a neighbour process (0 = none)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child()))
        return 0
    import torch
    from neighbours import rate_inside, start  # this script's folder is on sys.path

    settings = {"passive": {"OMP_WAIT_POLICY": "PASSIVE"}}
    settings |= {f"spin{n}": {"GOMP_SPINCOUNT": n} for n in args.spins.split(",")}
    base = {k: v for k, v in os.environ.items() if k not in WAIT_VARS}
    runs: dict[str, list[dict]] = {name: [] for name in settings}
    for _ in range(args.rounds):
        for name, extra in settings.items():
            neighbour = start([sys.executable, "-c", NEIGHBOUR, str(args.contend)],
                              base | {"OMP_WAIT_POLICY": "PASSIVE"}) if args.contend else None
            try:
                out = subprocess.run([sys.executable, __file__, "--child"], env=base | extra, cwd=ROOT,
                                     capture_output=True, text=True, check=True).stdout
            except BaseException:
                if neighbour:
                    neighbour.kill()
                raise
            rates = json.loads(out.strip().splitlines()[-1])
            window = (rates.pop("decoding_from"), rates.pop("decoding_until"))
            if neighbour:
                rates["neighbour_matmuls_s"] = rate_inside(neighbour, window)
            runs[name].append(rates)
    result = {"contend_threads": args.contend,
              "machine": {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "nproc": os.cpu_count(),
                          "load_average_at_end": os.getloadavg(),
                          "env": {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA",
                                                             "MKL_ENABLE_INSTRUCTIONS") if k in os.environ}},
              "tok_s_median": {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
                               for name, rs in runs.items()},
              "tok_s_all_rounds": runs}
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
