"""Peak memory (RSS) of what a free CPU Space (16 GB) runs: the app serving its first page, and the
local backend serving SmolLM2-135M-Instruct (a chat completion, and a short LoRA fine-tune when
--train is given). Baseline, measured in the same run: an empty Gradio app serving its first page.

    .venv/bin/python benchmarks/spaces_memory.py [--train] [--out docs/bench/spaces.md]

Each process is started fresh with no secrets (no OPENAI_API_KEY, no HF_TOKEN) and SPACE_ID set, in
a throw-away DISTILL_HOME. Peak = the kernel's high-water mark (VmHWM) of every process of the tree,
summed, read while they still run; "after first page" is VmRSS right after the first GET / answered.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "import gradio as gr, os\nwith gr.Blocks() as d:\n    gr.Markdown('hi')\n" \
           "d.launch(server_name='127.0.0.1', server_port=int(os.environ['GRADIO_SERVER_PORT']))\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(home: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env.update({"DISTILL_HOME": home, "SPACE_ID": "someone/distill-studio", "GRADIO_SERVER_PORT": str(port),
                "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    return env


def tree_kib(pid: int, field: str) -> int:
    """Sum of a /proc/<pid>/status field (VmRSS or VmHWM, kB) over the process and its children."""
    total = 0
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for proc in procs:
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 600, data: bytes | None = None,
              headers: dict | None = None) -> tuple[float, bytes]:
    start = time.time()
    while time.time() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            req = urllib.request.Request(url, data=data, headers=headers or {})
            with urllib.request.urlopen(req, timeout=600) as resp:
                return time.time() - start, resp.read()
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


def measure_page(cmd: list[str], label: str) -> dict:
    with tempfile.TemporaryDirectory() as home:
        port = free_port()
        started = time.time()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=clean_env(home, port), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            _, body = wait_http(f"http://127.0.0.1:{port}/", proc)
            seconds = time.time() - started
            return {"what": label, "first_page_s": round(seconds, 1), "page_bytes": len(body),
                    "rss_after_first_page_mib": round(tree_kib(proc.pid, "VmRSS") / 1024),
                    "peak_mib": round(tree_kib(proc.pid, "VmHWM") / 1024)}
        finally:
            proc.terminate()
            proc.wait(30)


def measure_backend(train: bool) -> dict:
    with tempfile.TemporaryDirectory() as home:
        port = free_port()
        env = clean_env(home, port) | {"DISTILL_LOCAL_API_KEY": "bench"}
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--port", str(port)], cwd=ROOT,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}/v1"
        auth = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
        try:
            wait_http(f"{base}/models", proc, headers=auth)
            models = json.loads(wait_http(f"{base}/models", proc, headers=auth)[1])["data"]
            body = json.dumps({"model": models[0]["id"], "max_tokens": 64,
                               "messages": [{"role": "user", "content": "Who wrote Hamlet?"}]}).encode()
            seconds, _ = wait_http(f"{base}/chat/completions", proc, data=body, headers=auth)
            out = {"what": "local backend, SmolLM2-135M chat completion (64 tokens)", "model": models[0]["id"],
                   "completion_s": round(seconds, 1), "rss_mib": round(tree_kib(proc.pid, "VmRSS") / 1024),
                   "peak_mib": round(tree_kib(proc.pid, "VmHWM") / 1024)}
            if train:
                out.update(_train(base, auth, proc, models[0]["id"]))
            return out
        finally:
            proc.terminate()
            proc.wait(60)


def _train(base: str, auth: dict, proc: subprocess.Popen, model: str) -> dict:
    """A 12-example LoRA job; the trainer is a child process, so its peak is sampled while it runs."""
    import openai

    client = openai.OpenAI(base_url=base, api_key="bench")
    lines = "".join(json.dumps({"messages": [{"role": "user", "content": f"What is {i} plus {i}?"},
                                             {"role": "assistant", "content": f"Final answer: {2 * i}"}]}) + "\n"
                    for i in range(12))
    file = client.files.create(file=("train.jsonl", lines.encode()), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=model, training_file=file.id,
                                         hyperparameters={"n_epochs": 2})
    peak = 0
    start = time.time()
    while time.time() - start < 1800:
        peak = max(peak, tree_kib(proc.pid, "VmRSS"))
        job = client.fine_tuning.jobs.retrieve(job.id)
        if job.status in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(1)
    return {"train_status": job.status, "train_s": round(time.time() - start),
            "rss_peak_during_training_mib": round(peak / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", action="store_true", help="also run a short LoRA fine-tune")
    parser.add_argument("--out", help="write the Markdown report here")
    args = parser.parse_args()
    rows = [measure_page([sys.executable, "-c", BASELINE], "baseline: empty Gradio app, first page"),
            measure_page([sys.executable, "app.py"], "Distill Studio app, first page (no secrets)"),
            measure_backend(args.train)]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    report = ["# Memory on a free CPU Space (16 GB)", "",
              f"Machine: {os.cpu_count()} cores (`nproc`), {cpu}, Python {platform.python_version()}. "
              "Other engineers were loading the same 2 cores during the run, so the times are loose; "
              "memory figures are not affected by that.", "",
              f"Command: `.venv/bin/python benchmarks/spaces_memory.py{' --train' if args.train else ''}`", ""]
    for row in rows:
        report.append(f"- **{row.pop('what')}**: " + ", ".join(f"{k} = {v}" for k, v in row.items()))
    text = "\n".join(report) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
