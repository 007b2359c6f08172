"""Job created -> first training step: a fresh training process vs the standby (pipeline/local/standby.py).

    DISTILL_MODEL_DIR=/tmp/distill-studio-models .venv/bin/python benchmarks/train_standby.py [--pairs 2]

On the real SmolLM2 and the fictional-person sample ("auto" hyperparameters, as the demo), through a
local backend in this process. Alternates fresh / standby jobs in ONE run (the machine is shared), each
cancelled after its first training step. Before a standby job the benchmark waits until the standby is
ready (as it is when a visitor's first fine-tune comes); a fresh job runs with DISTILL_TRAIN_STANDBY=0.
Also reports the standby's cost: its RSS and CPU seconds when ready, the wall time its idle-priority
imports took, and the nice value of every thread of a standby that trains (all but the importer's
leftovers must be 0). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def machine() -> dict:
    import platform

    import torch

    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return {"cpu": caps.get("cpu_name") or platform.processor(), "nproc": os.cpu_count(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""), "load_average": os.getloadavg()}


def proc_facts(pid: int) -> dict:
    """RSS (MB) and CPU seconds (user + system) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return {"rss_mb": round(rss / 1024), "cpu_s": round((int(fields[11]) + int(fields[12])) / TICKS, 2)}


def thread_nices(pid: int) -> dict[str, list]:
    """Each thread's nice value and CPU seconds so far, by nice value."""
    out: dict[str, list] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        out.setdefault(fields[16], []).append(round((int(fields[11]) + int(fields[12])) / TICKS, 2))
    return out


def wait_ready(runner, timeout: float = 900) -> tuple[int, float]:
    started = time.perf_counter()
    while (pid := runner._standby.ready()) is None:
        if time.perf_counter() - started > timeout:
            raise SystemExit("no standby became ready")
        time.sleep(0.1)
    return pid, time.perf_counter() - started


def first_step(client, runner, train_id: str) -> dict:
    """Creates the job, times it to its first metrics event, then cancels it."""
    created = time.perf_counter()
    job = client.fine_tuning.jobs.create(training_file=train_id, model="SmolLM2-135M-Instruct", seed=7)
    result: dict = {}
    while True:
        events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
        ready = next((e for e in events if e.message.startswith("Training ")), None)
        if ready and "ready_s" not in result:
            result["ready_s"] = ready.data["ready_s"]
            if runner._proc is not None and result["ready_s"]["handed_over"] > 0:
                result["trainer_threads_by_nice"] = thread_nices(runner._proc.pid)
        if any(e.type == "metrics" for e in events):
            result["created_to_first_step_s"] = round(time.perf_counter() - created, 2)
            break
        if client.fine_tuning.jobs.retrieve(job.id).status in ("failed", "cancelled", "succeeded"):
            raise SystemExit(f"job ended early: {client.fine_tuning.jobs.retrieve(job.id)}")
        time.sleep(0.1)
    if runner._proc is not None and "trainer_threads_by_nice" in result:
        result["trainer_threads_by_nice_at_first_step"] = thread_nices(runner._proc.pid)
    client.fine_tuning.jobs.cancel(job.id)
    while client.fine_tuning.jobs.retrieve(job.id).status != "cancelled" or runner._proc is not None:
        time.sleep(0.1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from pipeline.local.runtime import start_server

    facts = machine()
    os.environ["DISTILL_TRAIN_STANDBY"] = "0"  # none importing while the engine loads or the first job trains
    handle = start_server(root=Path(tempfile.mkdtemp(prefix="standby-bench-")), tiny=False)
    handle.wait_ready(timeout=600)  # the engine's model: loaded in this process at start
    runner = handle.app.state.backend.runner
    runner.standby_after_job_s = 0.0  # its 30 s pause after a job only delays the benchmark
    client = handle.client(timeout=600)
    with open(ROOT / "data/samples/person_train.jsonl", "rb") as fh:
        train = client.files.create(file=("person_train.jsonl", fh), purpose="fine-tune")
    runs: list[dict] = []
    try:
        for _ in range(args.pairs):
            os.environ["DISTILL_TRAIN_STANDBY"] = "0"
            runs.append({"kind": "fresh", "load_before": os.getloadavg()[0], **first_step(client, runner, train.id)})
            del os.environ["DISTILL_TRAIN_STANDBY"]
            runner.wake()  # the idle runner starts a standby now, not at its next 5 s look
            pid, waited = wait_ready(runner)
            cost = {"standby_ready_after_s": round(waited, 1), **proc_facts(pid)}
            runs.append({"kind": "standby", "load_before": os.getloadavg()[0], "standby": cost,
                         **first_step(client, runner, train.id)})
    finally:
        handle.stop()
    for run in runs:
        print(run["kind"], run["created_to_first_step_s"], "s", run["ready_s"], run.get("standby", ""))
    fresh = [r["created_to_first_step_s"] for r in runs if r["kind"] == "fresh"]
    warm = [r["created_to_first_step_s"] for r in runs if r["kind"] == "standby"]
    print(json.dumps({**facts, "load_average_at_end": os.getloadavg(), "runs": runs,
                      "fresh_mean_s": round(sum(fresh) / len(fresh), 2), "standby_mean_s": round(sum(warm) / len(warm), 2),
                      "ratio": round(sum(warm) / sum(fresh), 2)}))


if __name__ == "__main__":
    main()
