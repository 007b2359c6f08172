"""Load on a shared app, measured: N simulated visitors at once (gradio_client threads, default 20)
each load a sample, edit a row, chat (first token timed) and list fine-tuning jobs, on the tiny
local model, with multi-user isolation on. Then every visitor's view is checked for anyone else's
rows, jobs or models. Baseline, in the same run: one visitor alone doing the same steps first.

    .venv/bin/python benchmarks/spaces_load.py [--visitors 20] [--out docs/bench/spaces_load.json]

The app runs as its own process (app.py's Blocks, queue and warm start) in a throw-away workspace,
with no OpenAI key (every role is the local backend) and DISTILL_MULTI_USER=1. Visitor tokens are
signed with the app's secret, as the page would get them. Two fine-tuning jobs (visitors 0 and 1)
are created beforehand on the app's backend (found through the workspace's serving record) and
recorded as theirs; every visitor then lists jobs sending BOTH ids as its "recent jobs" (a forged
list): each must see only its own.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LAUNCH = """
import os, sys
sys.path.insert(0, os.getcwd())
import gradio.networking as net
net.url_ok = lambda url: True  # gradio's own 3 s reachability probe fails on a loaded host
import app
app.demo.queue(default_concurrency_limit=8).launch(server_name="127.0.0.1",
    server_port=int(os.environ["GRADIO_SERVER_PORT"]), prevent_thread_lock=True, quiet=True)
from pipeline.local.warmup import warm_up_in_background
warm_up_in_background()
app.demo.block_thread()
"""
MODEL = "gpt-4o-mini-2024-07-18"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 3)


def start_app(env: dict[str, str], port: int) -> subprocess.Popen:
    with open(Path(env["DISTILL_HOME"]) / "app.log", "wb") as log:  # the child keeps its own copy
        proc = subprocess.Popen([sys.executable, "-c", LAUNCH], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    import httpx

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/", timeout=30).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("the app exited; see app.log in its workspace")
        time.sleep(1)
    proc.kill()
    raise RuntimeError("the app did not serve its page in time")


def make_jobs(visitors: list[str]) -> list[str]:
    """One fine-tuning job each for the first two visitors, on the app's own backend."""
    from pipeline import ownership
    from pipeline.local.runtime import ensure_local_backend

    handle = ensure_local_backend()  # the app's backend, through the workspace's serving record
    assert handle.app is None, "expected the app's backend, not a new one"
    client = handle.client()
    lines = [json.dumps({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]})
             for i in range(12)]
    upload = client.files.create(file=("t.jsonl", io.BytesIO("\n".join(lines).encode())), purpose="fine-tune")
    jobs = []
    for token in visitors[:2]:
        job = client.fine_tuning.jobs.create(training_file=upload.id, model="SmolLM2-135M-Instruct",
                                             hyperparameters={"n_epochs": 1})
        ownership.claim(ownership.verify_visitor(token), "job", job.id)
        jobs.append(job.id)
    return jobs


def accepted(client, api: str, **kwargs) -> dict:
    """The arguments this endpoint takes (the tabs name parameters after their components, which have
    moved between releases); a missing required one then fails loudly in the call."""
    names = {p["parameter_name"] for p in client.view_api(return_format="dict", print_info=False)
             ["named_endpoints"][api]["parameters"]}
    return {k: v for k, v in kwargs.items() if k in names}


def table_of(outputs) -> dict:
    """The Dataset table among an event's outputs (a dict with headers and data)."""
    return next(o for o in outputs if isinstance(o, dict) and "headers" in o and "data" in o)


def visit(url: str, index: int, token: str, sample: str, jobs: list[str], out: dict, go: threading.Event) -> None:
    from gradio_client import Client

    record: dict = {"requests": 0, "errors": [], "edit_s": None, "first_token_s": None}
    out[index] = record
    marker = f"edited by visitor {index} {secrets.token_hex(4)}"
    record["marker"] = marker

    def call(api: str, **kwargs):
        record["requests"] += 1
        return client.predict(api_name=api, **accepted(client, api, **kwargs))

    try:
        client = Client(url, verbose=False, httpx_kwargs={"timeout": 300})
        go.wait()
        table = table_of(call("/load_sample", sample_dd=sample, name=sample, append_cb=False, append=False,
                              visitor=token, model_dd=MODEL, model=MODEL, epochs_num=0, epochs=0))
        table["data"][0][2] = marker  # the first row's user message
        started = time.perf_counter()
        call("/save_edits", table_df=table, table=table, visitor=token, model_dd=MODEL, model=MODEL,
             epochs_num=0, epochs=0)
        record["edit_s"] = time.perf_counter() - started
        record["requests"] += 1  # the chat below
        started = time.perf_counter()
        job = client.submit(api_name="/chat_send", **accepted(
            client, "/chat_send", msg_box=f"Hello from visitor {index}", system_box="", max_tokens_nb=16,
            visitor=token))
        for update in job:
            pane = update[0] if isinstance(update, list | tuple) else None
            if record["first_token_s"] is None and pane and any(
                    m.get("role") == "assistant" and m.get("content") for m in pane if isinstance(m, dict)):
                record["first_token_s"] = time.perf_counter() - started
        job.result()
        listed = call("/finetune_jobs", visitor=token, recent_jobs=jobs, endpoint_dd="local")
        record["jobs_seen"] = [j for j in jobs if j in json.dumps(listed)]
        record["models_seen"] = json.dumps(call("/models_for_fine_tuned", fine_tuned_endpoint_dd="local",
                                                fine_tuned_model_dd=""))
    except Exception as exc:  # counted, and the run goes on: errors are one of the figures
        record["errors"].append(f"{type(exc).__name__}: {exc}"[:300])


def check_rows(url: str, tokens: list[str], out: dict) -> list[str]:
    """Each visitor's draft has their own edit and nobody else's."""
    from gradio_client import Client

    client, problems = Client(url, verbose=False, httpx_kwargs={"timeout": 300}), []
    for index, token in enumerate(tokens):
        kwargs = accepted(client, "/show_draft", visitor=token, dataset_rev=0, model_dd=MODEL, model=MODEL,
                          epochs_num=0, epochs=0)
        text = json.dumps(table_of(client.predict(api_name="/show_draft", **kwargs)))
        for other, record in out.items():
            mine = record.get("marker", "") in text
            if (other == index) != mine:
                problems.append(f"visitor {index}: edit of visitor {other} {'missing' if other == index else 'seen'}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench" / "spaces_load.json")
    args = parser.parse_args()
    home, port = tempfile.mkdtemp(prefix="distill-load-"), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HF_TOKEN")}
    env.update(DISTILL_HOME=home, DISTILL_LOCAL_TINY="1", DISTILL_MULTI_USER="1", GRADIO_SERVER_PORT=str(port),
               DISTILL_SECRET_KEY=secrets.token_hex(16), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    # DISTILL_MODEL_DIR passes through when set: the converted models are reused instead of converted again.
    os.environ.update({k: env[k] for k in ("DISTILL_HOME", "DISTILL_LOCAL_TINY", "DISTILL_SECRET_KEY")})
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        os.environ.pop(name, None)
    from components.dataset_view import sample_choices
    from pipeline import ownership

    app = start_app(env, port)
    try:
        url = f"http://127.0.0.1:{port}/"
        tokens = [ownership.mint_visitor() for _ in range(args.visitors)]
        jobs = make_jobs(tokens)
        # Baseline in the same run: one visitor alone, the same steps (its rows are not checked).
        solo: dict[int, dict] = {}
        alone = threading.Event()
        alone.set()
        visit(url, 0, ownership.mint_visitor(), sample_choices()[0], [], solo, alone)
        out: dict[int, dict] = {}
        go = threading.Event()
        threads = [threading.Thread(target=visit, args=(url, i, t, sample_choices()[0], jobs, out, go))
                   for i, t in enumerate(tokens)]
        for thread in threads:
            thread.start()
        time.sleep(2)  # every client connected; then all start at once
        began = time.perf_counter()
        go.set()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - began
        problems = check_rows(url, tokens, out)
        for index, record in out.items():
            expected = [jobs[index]] if index < 2 else []
            if record.get("jobs_seen") not in (None, expected):
                problems.append(f"visitor {index} saw jobs {record['jobs_seen']}, expected {expected}")
            for job_id, owner in zip(jobs, (0, 1), strict=True):  # a finished job's model: its owner's only
                if job_id in record.get("models_seen", "") and owner != index:
                    problems.append(f"visitor {index} saw the model of visitor {owner}'s job")
        edits = [r["edit_s"] for r in out.values() if r["edit_s"] is not None]
        firsts = [r["first_token_s"] for r in out.values() if r["first_token_s"] is not None]
        result = {
            "command": f"python benchmarks/spaces_load.py --visitors {args.visitors}",
            "machine": machine(), "visitors": args.visitors, "wall_s": round(wall, 1),
            "requests": sum(r["requests"] for r in out.values()) + len(tokens),
            "errors": sum(len(r["errors"]) for r in out.values()),
            "error_samples": [e for r in out.values() for e in r["errors"]][:5],
            "table_edit_s": {"p50": percentile(edits, 0.5), "p95": percentile(edits, 0.95), "n": len(edits)},
            "chat_first_token_s": {"p50": percentile(firsts, 0.5), "p95": percentile(firsts, 0.95), "n": len(firsts)},
            "isolation_problems": problems,
            "baseline_one_visitor_alone": {k: solo[0].get(k) for k in ("edit_s", "first_token_s", "errors")},
        }
    finally:
        app.terminate()
        try:
            app.wait(20)
        except subprocess.TimeoutExpired:
            app.kill()
    result["per_visitor"] = {i: {k: v for k, v in r.items() if k not in ("marker", "models_seen")}
                             for i, r in sorted(out.items())}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0 if not result["errors"] and not problems else 1


def machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "capability": torch.backends.cpu.get_cpu_capability(), "nproc": os.cpu_count(),
            "load_average": [round(x, 1) for x in os.getloadavg()], "python": platform.python_version()}


if __name__ == "__main__":
    sys.exit(main())
