"""The training process waiting for its job (pipeline/local/standby.py), on the tiny model.

A job is handed to a standby whose imports are done; a dead or stale one is replaced by a fresh
process as before; cancelling kills the process that trains, standby or not. No timing asserted.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from pipeline.local import standby as standby_module
from tests.test_local_backend import BASE, chat_file, upload, wait_job

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the standby is Linux-only")
DEADLINE_S = 600  # a bound on waiting on a loaded 2-core machine, not a timing claim


@pytest.fixture(autouse=True)
def standby_right_after_jobs(tiny_backend, monkeypatch):
    """The runner waits 30 s after a job before starting the next standby; these tests need it now."""
    monkeypatch.setattr(tiny_backend.app.state.backend.runner, "standby_after_job_s", 0.0)


def ready_standby(runner) -> int:
    """The pid of the runner's standby once its imports are done."""
    deadline = time.monotonic() + DEADLINE_S
    while (pid := runner._standby.ready()) is None:
        assert time.monotonic() < deadline, "no standby became ready"
        time.sleep(0.2)
    return pid


def training_pid(runner, job_id: str) -> int:
    """The pid of the process training `job_id`: the job is "running" a moment before its process is
    assigned (a standby is handed the job first), so this waits for it."""
    deadline = time.monotonic() + DEADLINE_S
    while (proc := runner._proc) is None or runner._running != job_id:
        assert time.monotonic() < deadline, "the running job has no training process"
        time.sleep(0.02)
    return proc.pid


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False


def run_job(client, runner, seed: int = 3) -> tuple[object, int | None, dict, list]:
    """A small job to its end: (job, pid of the process that trained it, its phases, its step losses)."""
    job = client.fine_tuning.jobs.create(training_file=upload(client, chat_file(12)).id, model=BASE, seed=seed,
                                         hyperparameters={"n_epochs": 1, "batch_size": 4})
    pids = []
    deadline = time.monotonic() + DEADLINE_S
    while (job := client.fine_tuning.jobs.retrieve(job.id)).status not in ("succeeded", "failed", "cancelled"):
        proc = runner._proc
        if proc is not None and runner._running == job.id and proc.pid not in pids:
            pids.append(proc.pid)
        assert time.monotonic() < deadline, f"job stuck in {job.status}"
        time.sleep(0.02)
    assert job.status == "succeeded", job.error
    events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
    created = next(e.data for e in events if e.message.startswith("New fine-tuned model created"))
    phases = created["phases_s"]
    losses = sorted((e.data["step"], e.data["train_loss"]) for e in events if e.type == "metrics")
    # Every optimizer step ran on a thread count the trainer chose (pipeline/local/train_threads.py).
    assert sum(created["thread_steps"].values()) == len(losses) > 0
    assert len(pids) <= 1
    return job, (pids[0] if pids else None), phases, losses


def test_a_job_trains_in_the_standby_and_a_dead_one_falls_back_to_a_fresh_process(tiny_backend, monkeypatch):
    client, runner = tiny_backend.client(), tiny_backend.app.state.backend.runner
    standby = ready_standby(runner)
    _, pid, phases, warm_losses = run_job(client, runner)
    # The process that trained is the one that had imported everything before the job existed.
    assert pid == standby and phases["handed_over"] > 0
    assert phases["handed_over"] <= phases["imports"] <= phases["model"] <= phases["data"] <= phases["trained"]
    # The queue emptied: a new standby waits for the next job. Killed (the OOM killer), a fresh process trains.
    second = ready_standby(runner)
    assert second != standby
    # No replacement before the job (the idle runner would start one, and the job would wait for it).
    monkeypatch.setattr(runner, "standby_after_job_s", 3600.0)
    os.kill(second, signal.SIGKILL)
    _, pid, phases, cold_losses = run_job(client, runner)
    assert pid != second and phases["handed_over"] == 0
    assert cold_losses == warm_losses  # the same seed trains the same in either kind of process


def restarted_standby(runner) -> int:
    """As right after the app starts: a new standby, still importing (its pid)."""
    runner._standby.shutdown()
    runner._standby.ensure()  # (or the idle runner's own call, a moment before: the same)
    pid = runner._standby._proc.pid
    assert runner._standby.ready() is None  # it has only just been spawned
    return pid


def test_a_job_that_comes_while_the_standby_imports_waits_for_it(tiny_backend, monkeypatch):
    """The demo's fine-tune comes seconds after the app started its standby: it waits for that one's
    imports to end instead of importing everything again in a fresh process."""
    client, runner = tiny_backend.client(), tiny_backend.app.state.backend.runner
    ready_standby(runner)
    # A loaded test machine imports slowly and may starve an idle-priority process: neither is this test's point.
    monkeypatch.setattr(standby_module, "AWAIT_LIMIT_S", DEADLINE_S)
    monkeypatch.setattr(standby_module, "AWAIT_MIN_CPU_SHARE", 0.0)
    importing = restarted_standby(runner)
    _, pid, phases, _ = run_job(client, runner)
    assert pid == importing and phases["handed_over"] > 0, (pid, importing, phases)


def test_a_standby_that_gets_no_cpu_is_not_waited_for(tiny_backend, monkeypatch):
    """Beside a busy decoder an idle-priority import can get no CPU for seconds: a fresh process is faster."""
    runner = tiny_backend.app.state.backend.runner
    ready_standby(runner)
    monkeypatch.setattr(standby_module, "AWAIT_LIMIT_S", DEADLINE_S)
    importing = restarted_standby(runner)
    monkeypatch.setattr(standby_module, "cpu_seconds", lambda _pid: None)  # /proc unreadable: no wait
    assert runner._standby.await_ready() is False
    monkeypatch.setattr(standby_module, "cpu_seconds", lambda _pid: 1.0)  # its CPU time stands still
    assert runner._standby.await_ready() is False  # given up long before the limit
    assert alive(importing)  # not discarded by the wait: a later job may still use it


def test_cancel_kills_the_standby_that_trains(tiny_backend):
    client, runner = tiny_backend.client(), tiny_backend.app.state.backend.runner
    standby = ready_standby(runner)
    job = client.fine_tuning.jobs.create(training_file=upload(client, chat_file(40)).id, model=BASE,
                                         hyperparameters={"n_epochs": 50})
    wait_job(client, job.id, ("running",))
    assert training_pid(runner, job.id) == standby
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    deadline = time.monotonic() + 30
    while alive(standby):
        assert time.monotonic() < deadline, "the cancelled job's process still runs"
        time.sleep(0.1)
    job = wait_job(client, job.id, ("cancelled", "failed", "succeeded"))
    assert job.status == "cancelled" and job.fine_tuned_model is None


def test_a_settings_change_discards_the_standby_started_before_it(tiny_backend, monkeypatch):
    client, runner = tiny_backend.client(), tiny_backend.app.state.backend.runner
    stale = ready_standby(runner)
    monkeypatch.setenv("DISTILL_PRECISION", "fp32")  # the operator forces fp32 after the standby started
    job, pid, phases, _ = run_job(client, runner)
    assert pid != stale and not alive(stale)
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data]
    assert any("computing in fp32 " in m for m in messages), messages
    # The next standby is started with the new setting, and is used.
    fresh = ready_standby(runner)
    assert fresh != stale and runner._standby._env["DISTILL_PRECISION"] == "fp32"
    _, pid, phases, _ = run_job(client, runner)
    assert pid == fresh and phases["handed_over"] > 0


def test_the_standby_can_be_turned_off(tiny_backend, monkeypatch):
    client, runner = tiny_backend.client(), tiny_backend.app.state.backend.runner
    standby = ready_standby(runner)
    monkeypatch.setenv("DISTILL_TRAIN_STANDBY", "0")  # e.g. a Space short of memory
    _, pid, phases, _ = run_job(client, runner)
    assert pid != standby and phases["handed_over"] == 0 and not alive(standby)
    runner._standby.ensure()  # what the idle runner calls every few seconds: none is started
    assert runner._standby._proc is None


def test_the_next_standby_waits_until_what_follows_a_fine_tune_is_done(tiny_backend, monkeypatch):
    client, runner = tiny_backend.client(), tiny_backend.app.state.backend.runner
    standby = ready_standby(runner)
    monkeypatch.setattr(runner, "standby_after_job_s", 3600.0)
    _, pid, _, _ = run_job(client, runner)
    assert pid == standby
    assert not runner._standby_due() and runner._standby._proc is None  # too soon after the job: none yet
    monkeypatch.setattr(runner, "standby_after_job_s", 0.0)
    runner.wake()
    assert ready_standby(runner) != standby


def test_a_failing_standby_never_fails_a_job(tiny_backend, monkeypatch):
    """Starting or handing over a standby that raises (no memory to spawn, a broken pipe...) leaves
    the job to a fresh process, and the runner's thread goes on taking jobs."""
    client, runner = tiny_backend.client(), tiny_backend.app.state.backend.runner
    ready_standby(runner)

    def broken(*_args) -> None:
        raise OSError("cannot allocate memory")

    monkeypatch.setattr(runner._standby, "hand_over", broken)
    monkeypatch.setattr(runner._standby, "ensure", broken)
    for _ in range(2):  # the second job proves the runner's thread survived the idle ensure()
        runner.wake()
        _, _, phases, _ = run_job(client, runner)
        assert phases["handed_over"] == 0
