"""A fine-tune while a visitor chats: the trainer's thread choice against two fixed threads, end to end.

Through a local backend in this process (real SmolLM2, the real openai SDK over HTTP), each round runs
the fictional-person fine-tune ("auto" hyperparameters, as the demo) twice, once per trainer setting
(`DISTILL_TRAIN_THREADS=2`, the count torch chose on 2 cores before the choice existed, and `auto`),
while a chat thread asks the base model one question after another (answers of up to 64 tokens at
temperature 0.7, not streamed: the engine decodes them as it decodes the Chat tab's). Each job gets a
fresh training process (`DISTILL_TRAIN_STANDBY=0`) so it reads the setting. Reported per job: its
training seconds (from the trainer's own phases), the steps on each thread count, and the chat's
tokens/s while the job trained.

`--chat-seconds S` stops the chat S seconds after it started (2 s before the job): the trainer must
then go back to two threads.

    DISTILL_MODEL_DIR=/tmp/distill-studio-models .venv/bin/python benchmarks/train_beside_chat.py [--rounds 2] [--chat-seconds S] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = "SmolLM2-135M-Instruct"
QUESTIONS = ("What is a good name for a lighthouse keeper's cat?", "Explain why the sky is blue.",
             "Give three tips for writing a short story.", "What does a barometer measure?")


def chat_loop(client, stop: threading.Event, done: list[tuple[float, int]], seconds: float | None) -> None:
    """Chats until `stop` (or for `seconds`); appends (finish time, completion tokens) per answer."""
    n, until = 0, time.time() + seconds if seconds else float("inf")
    while not stop.is_set() and time.time() < until:
        reply = client.chat.completions.create(model=MODEL, max_tokens=64, temperature=0.7,
                                               messages=[{"role": "user", "content": QUESTIONS[n % len(QUESTIONS)]}])
        done.append((time.time(), reply.usage.completion_tokens))
        n += 1


def run_job(client, train_id: str, setting: str, chat_seconds: float | None) -> dict:
    os.environ["DISTILL_TRAIN_THREADS"] = setting  # the training process inherits it
    stop, answers = threading.Event(), []
    chat = threading.Thread(target=chat_loop, args=(client, stop, answers, chat_seconds), daemon=True)
    chat.start()
    time.sleep(2)  # the chat is decoding when the job starts
    job = client.fine_tuning.jobs.create(training_file=train_id, model=MODEL, seed=7)
    while (job := client.fine_tuning.jobs.retrieve(job.id)).status not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.5)
    stop.set()
    chat.join()
    if job.status != "succeeded":
        raise SystemExit(f"{setting}: the job ended {job.status}: {job.error}")
    events = client.fine_tuning.jobs.list_events(job.id, limit=200).data
    created = next(e.data for e in events if e.message.startswith("New fine-tuned model created"))
    phases = created["phases_s"]
    # The trainer's phases are seconds from its process start; training ran between "data" and "trained".
    started = next(e.created_at for e in events if e.message == "Fine-tuning job started")
    train_from, train_to = started + phases["data"], started + phases["trained"]
    inside = [tokens for at, tokens in answers if train_from <= at <= train_to]
    return {"setting": setting, "training_s": round(phases["trained"] - phases["data"], 1),
            "steps": sum(created["thread_steps"].values()), "thread_steps": created["thread_steps"],
            "chat_tok_s": round(sum(inside) / (train_to - train_from), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--chat-seconds", type=float, help="chat only this long from the job's start (a chat that ends)")
    args = parser.parse_args()
    os.environ["DISTILL_TRAIN_STANDBY"] = "0"
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from machine_facts import machine

    from pipeline.local.runtime import start_server

    handle = start_server(root=Path(tempfile.mkdtemp(prefix="train-beside-chat-")), tiny=False)
    handle.wait_ready(timeout=900)
    client = handle.client(timeout=600)
    rows: list[dict] = []
    try:
        with open(ROOT / "data" / "samples" / "person_train.jsonl", "rb") as fh:
            train_id = client.files.create(file=("person_train.jsonl", fh), purpose="fine-tune").id
        for _ in range(args.rounds):
            for setting in ("2", "auto"):
                rows.append(run_job(client, train_id, setting, args.chat_seconds))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        handle.stop()
    median = {s: {k: statistics.median(r[k] for r in rows if r["setting"] == s) for k in ("training_s", "chat_tok_s")}
              for s in ("2", "auto")}
    print(json.dumps({"machine": machine(), "median": median, "jobs": rows}, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
