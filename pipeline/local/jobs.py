"""The fine-tuning job runner: validate -> queue -> train in a subprocess -> register the model.

One job trains at a time, in creation order. Training runs in `python -m pipeline.local.trainer` so
the server keeps answering (and a crash of torch cannot take it down); the child prints one JSON line
per event on stdout, which becomes job events here. Cancel terminates the child (killed after 3 s).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.local.dataset import DataError, read_examples
from pipeline.local.standby import Standby, trainer_env
from pipeline.local.store import Store, new_id

log = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
LEARNING_RATE = 1e-3  # LoRA on this CPU: 1e-3 learned 36 facts in 5 epochs; the multiplier scales it
LR_SCHEDULER = "constant"
WARMUP = 0  # steps, or a fraction of them when < 1
FINAL = ("succeeded", "failed", "cancelled")
STANDBY_AFTER_JOB_S = 30.0  # the next standby training process starts this long after a job (see _standby_due)


def recipe_spec(multiplier: float) -> dict:
    """The optimizer part of the trainer's spec (docs/bench/recipe.md)."""
    return {"learning_rate": LEARNING_RATE * multiplier, "lr_scheduler": LR_SCHEDULER, "warmup": WARMUP}


def queue_position(store: Store, job_id: str) -> int | None:
    """1 = next to run; None when not waiting."""
    waiting = [j for j in reversed(store.list_jobs()) if j["status"] in ("validating_files", "queued")]
    ids = [j["id"] for j in waiting]
    return ids.index(job_id) + 1 if job_id in ids else None


class JobRunner:
    def __init__(self, store: Store, base_id: str, model_dir: Callable[[], Path],
                 prepare: Callable[[str, Path], None] | None = None):
        """`prepare(model_id, adapter_dir)` readies a new fine-tuned model for chat before its job is
        reported succeeded (the engine's merge and conversion), so that nobody's first use waits for it."""
        self.store, self.base_id, self._model_dir = store, base_id, model_dir
        self._prepare = prepare
        self._cv = threading.Condition()
        self._proc: subprocess.Popen | None = None
        self._running: str | None = None
        self._stopped = False
        self._standby = Standby(store.jobs_dir.parent / "trainer_standby.log")
        self.standby_after_job_s = STANDBY_AFTER_JOB_S
        self._trained_at: float | None = None  # when the last training process ended (monotonic)
        self._recover()
        # Validation has its own thread so a job created while another trains is checked at once.
        threading.Thread(target=self._loop, args=("validating_files",), name="finetune-validate", daemon=True).start()
        threading.Thread(target=self._loop, args=("queued",), name="finetune-train", daemon=True).start()

    def _recover(self) -> None:
        """Jobs the previous runner left mid-way (it held the lease, so it is gone now): a running job
        lost its training process, so it failed; one being validated is simply validated again."""
        for job in self.store.list_jobs():
            if job["status"] == "running":
                pid = job.get("_runner_pid")
                process = f"process {pid}" if pid else "process"
                message = (f"The server {process} that ran this job stopped before it finished; "
                           "create the job again.")
                self.store.update_job(job["id"], status="failed", finished_at=int(time.time()),
                                      error={"code": "server_restarted", "message": message, "param": None})
                self.store.add_event(job["id"], message, level="error")

    def wake(self) -> None:
        with self._cv:
            self._cv.notify_all()

    def shutdown(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify_all()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        self._standby.shutdown()

    def cancel(self, job_id: str) -> dict:
        with self._cv:
            job = self.store.get_job(job_id)
            if job["status"] in FINAL:
                return job
            self.store.add_event(job_id, "Job cancelled by the user.")  # before the status, as in _fail
            job = self.store.update_job(job_id, status="cancelled", finished_at=int(time.time()))
            proc = self._proc if self._running == job_id else None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
        return job

    # -- the loop --------------------------------------------------------------------------------
    def _next(self, status: str) -> dict | None:
        jobs = list(reversed(self.store.list_jobs()))  # oldest first
        return next((job for job in jobs if job["status"] == status), None)

    def _loop(self, status: str) -> None:
        while True:
            with self._cv:
                job = self._next(status)
                while job is None and not self._stopped:
                    if status == "queued" and self._standby_due():
                        # Idle (never while one trains): the next job finds its training process ready,
                        # started with today's settings (a changed one replaces it within seconds).
                        self._ensure_standby()
                    self._cv.wait(timeout=5)
                    job = self._next(status)
                if self._stopped:
                    return
            try:
                if status == "validating_files":
                    self._validate(job)
                else:
                    self._train(job)
            except Exception as exc:  # never leave a job hanging in a non-final state
                log.exception("fine-tuning job %s failed", job["id"])
                self._fail(job["id"], "internal_error", f"The local backend failed: {type(exc).__name__}: {exc}")

    def _standby_due(self) -> bool:
        """At start, and `standby_after_job_s` after a job's process ended: what follows a fine-tune
        (the new model's first answers, the demo's scoring) decodes then, and even an idle-priority
        import shares the CPU's caches and memory bandwidth with it."""
        return self._trained_at is None or time.monotonic() - self._trained_at >= self.standby_after_job_s

    def _ensure_standby(self) -> None:
        try:
            self._standby.ensure()
        except Exception:  # jobs start fresh processes, as before; this thread must go on
            log.warning("starting a training standby failed", exc_info=True)

    def _await_standby(self) -> None:
        try:
            self._standby.await_ready()
        except Exception:  # the job must not fail for it: a fresh process trains it
            log.warning("waiting for the training standby failed", exc_info=True)

    def _warm_process(self, directory: Path) -> subprocess.Popen | None:
        try:
            return self._standby.hand_over(directory)
        except Exception:  # the job must not fail for it: a fresh process trains it
            log.warning("handing a job to the training standby failed", exc_info=True)
            return None

    def _fail(self, job_id: str, code: str, message: str, param: str | None = None) -> None:
        if self.store.get_job(job_id)["status"] == "cancelled":
            return
        # The event first: a client that sees the final status and then reads the events (watch_job)
        # must find the last ones there, as it stops polling then.
        self.store.add_event(job_id, f"Fine-tuning failed: {message}", level="error")
        self.store.update_job(job_id, status="failed", finished_at=int(time.time()),
                              error={"code": code, "message": message, "param": param})

    def _read(self, file_id: str, param: str) -> list[dict]:
        path = self.store.file_data_path(file_id)
        if path is None:
            raise DataError(f"The file '{file_id}' no longer exists.")
        try:
            return read_examples(path.read_bytes(), minimum=10 if param == "training_file" else 1)
        except DataError as exc:
            raise DataError(f"{param} {file_id}: {exc}") from None

    def _validate(self, job: dict) -> None:
        self.store.add_event(job["id"], f"Validating training file: {job['training_file']}")
        try:
            train = self._read(job["training_file"], "training_file")
            if job.get("validation_file"):
                self._read(job["validation_file"], "validation_file")
        except DataError as exc:
            param = "validation_file" if str(exc).startswith("validation_file") else "training_file"
            self._fail(job["id"], "invalid_training_file" if param == "training_file" else "invalid_validation_file",
                       str(exc), param)
            return
        hp = dict(job["hyperparameters"])
        n = len(train)
        from pipeline.local.dataset import auto_batch_size, resolved_auto_epochs

        if hp["n_epochs"] == "auto":
            hp["n_epochs"] = resolved_auto_epochs(n)
        if hp["batch_size"] == "auto":
            hp["batch_size"] = auto_batch_size(n)
        if hp["learning_rate_multiplier"] == "auto":
            hp["learning_rate_multiplier"] = 1.0
        with self._cv:
            if self.store.get_job(job["id"])["status"] != "validating_files":
                return  # cancelled meanwhile
            method = {"type": "supervised", "supervised": {"hyperparameters": hp}}
            self.store.update_job(job["id"], status="queued", hyperparameters=hp, method=method)
            ahead = sum(1 for j in self.store.list_jobs() if j["status"] in ("queued", "running")) - 1
        self.store.add_event(job["id"], "Files validated, moving job to queued state")
        self.store.add_event(job["id"], f"Job queued: {ahead} job(s) ahead of it.", data={"jobs_ahead": ahead})
        self.wake()

    def _train(self, job: dict) -> None:
        job_id, hp = job["id"], job["hyperparameters"]
        directory = self.store.jobs_dir / job_id
        train = self._read(job["training_file"], "training_file")
        valid = self._read(job["validation_file"], "validation_file") if job.get("validation_file") else []
        steps = math.ceil(len(train) / hp["batch_size"]) * hp["n_epochs"]
        spec = {"model_dir": str(self._model_dir()), "train": train, "valid": valid, "epochs": hp["n_epochs"],
                "batch_size": hp["batch_size"], **recipe_spec(float(hp["learning_rate_multiplier"])),
                "seed": job["seed"], "adapter_dir": str(self.store.adapter_dir(job_id)), "total_steps": steps}
        (directory / "spec.json").write_text(json.dumps(spec))
        self._await_standby()  # outside the lock: a cancel meanwhile is seen below
        with self._cv:
            if self.store.get_job(job_id)["status"] != "queued":
                return
            self.store.update_job(job_id, status="running", _runner_pid=os.getpid())
            self._running = job_id
            stderr = open(directory / "trainer.log", "wb")  # noqa: SIM115 - closed after the process ends
            # A standby that has already imported torch & co. trains it if it can; else a fresh process.
            self._proc = self._warm_process(directory) or subprocess.Popen(
                [sys.executable, "-m", "pipeline.local.trainer", str(directory)],
                stdout=subprocess.PIPE, stderr=stderr, cwd=PROJECT_ROOT, env=trainer_env())
            proc = self._proc
        self.store.add_event(job_id, "Fine-tuning job started")
        rows, done = [], None
        try:
            for raw in proc.stdout:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue  # a library printed to stdout; the trainer's own lines are JSON
                if msg.get("kind") == "metrics":
                    rows.append(msg["data"])
                    self.store.add_event(job_id, msg["message"], type_="metrics", data=msg["data"])
                elif msg.get("kind") == "message":
                    self.store.add_event(job_id, msg["message"], data=msg.get("data"))
                elif msg.get("kind") == "done":
                    done = msg
            code = proc.wait()
        finally:
            stderr.close()
            with self._cv:
                self._proc, self._running = None, None
                self._trained_at = time.monotonic()
        if self.store.get_job(job_id)["status"] == "cancelled":
            return
        if code != 0 or done is None:
            tail = (directory / "trainer.log").read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            self._fail(job_id, "trainer_crashed", f"The training process stopped unexpectedly "
                       f"(exit code {code}): {tail[0][:500]}")
            return
        self._succeed(job, rows, done)

    def _succeed(self, job: dict, rows: list[dict], done: dict) -> None:
        job_id = job["id"]
        model_id = f"ft:{self.base_id}:local:{job.get('user_provided_suffix') or 'model'}:{job_id}"
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy"])
        for r in rows:
            writer.writerow([r["step"], r.get("train_loss", ""), r.get("train_mean_token_accuracy", ""),
                             r.get("valid_loss", ""), r.get("valid_mean_token_accuracy", "")])
        result = self.store.add_file(out.getvalue().encode(), "step_metrics.csv", "fine-tune-results")
        last = rows[-1] if rows else {"step": 0}
        checkpoint = {"id": new_id("ftckpt"), "object": "fine_tuning.job.checkpoint", "created_at": int(time.time()),
                      "fine_tuned_model_checkpoint": model_id, "fine_tuning_job_id": job_id,
                      "step_number": last["step"], "metrics": {k: v for k, v in last.items() if k != "total_steps"}}
        (self.store.jobs_dir / job_id / "checkpoints.json").write_text(json.dumps([checkpoint]))
        phases = dict(done.get("phases_s") or {})  # the training process's, from its start
        if self._prepare is not None:
            started = time.perf_counter()
            try:
                self._prepare(model_id, self.store.adapter_dir(job_id))
                phases["prepare_for_chat"] = round(time.perf_counter() - started, 2)
            except Exception:  # the model still works: its first request merges it, as before
                log.warning("preparing %s for chat failed", model_id, exc_info=True)
        with self._cv:
            if self.store.get_job(job_id)["status"] == "cancelled":
                return
            # The events before the status, as in _fail. thread_steps: optimizer steps run on each thread
            # count (pipeline/local/train_threads.py), and their median seconds; validation_s: the
            # validation passes' seconds in all.
            self.store.add_event(job_id, f"New fine-tuned model created: {model_id}",
                                 data={"phases_s": phases, **{key: done.get(key) for key in
                                                              ("thread_steps", "thread_step_s", "validation_s")}})
            self.store.add_event(job_id, "The job has successfully completed")
            self.store.update_job(job_id, status="succeeded", fine_tuned_model=model_id, finished_at=int(time.time()),
                                  trained_tokens=done.get("trained_tokens"), result_files=[result["id"]])
