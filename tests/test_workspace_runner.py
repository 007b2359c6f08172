"""One job runner per workspace, with real processes: a second server never touches the jobs the
first runs, takes over (recovering what the first left) when the first dies, and a keyless CLI
command uses the backend already serving the workspace instead of starting its own."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from test_local_backend import BASE, chat_file, upload

from pipeline.local import lease
from pipeline.local.runtime import spawn_server
from pipeline.local.store import Store

ROOT = Path(__file__).resolve().parent.parent


def health(handle) -> dict:
    return httpx.get(handle.base_url.removesuffix("/v1") + "/health", timeout=10).json()


def until(condition, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


def a_running_job(store: Store, runner_pid: int) -> str:
    """A job record as the runner writes it while its trainer works."""
    job_id = "ftjob-" + "b" * 24
    store.create_job({"id": job_id, "object": "fine_tuning.job", "created_at": int(time.time()), "status": "running",
                      "model": BASE, "training_file": "file-" + "0" * 24, "hyperparameters": {},
                      "fine_tuned_model": None, "error": None, "_runner_pid": runner_pid})
    return job_id


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def test_a_second_server_leaves_the_jobs_alone_and_takes_over_when_the_first_dies(home):
    first = spawn_server(home=home, tiny=True)
    second = None
    try:
        assert health(first)["runs_jobs"]
        root = home / "local-backend"
        store = Store(root)
        running = a_running_job(store, first.process.pid)
        second = spawn_server(home=home, tiny=True)
        assert health(second)["runs_jobs"] is False
        # Before: the second server's runner failed the first's running job as 'server_restarted'.
        assert store.get_job(running)["status"] == "running"
        client = second.client(max_retries=0)
        train = upload(client, chat_file())
        refused = httpx.post(second.base_url + "/fine_tuning/jobs", timeout=30,
                             headers={"Authorization": f"Bearer {second.api_key}"},
                             json={"model": BASE, "training_file": train.id})
        assert refused.status_code == 409 and first.base_url in refused.json()["error"]["message"]
        assert client.fine_tuning.jobs.retrieve(running).status == "running"  # reads still work
        assert lease.read_record(root)["url"] == first.base_url

        first.process.send_signal(signal.SIGKILL)  # no clean-up of any kind
        first.process.wait(30)
        until(lambda: health(second)["runs_jobs"], what="the second server to take the runner")
        job = client.fine_tuning.jobs.retrieve(running)
        assert job.status == "failed" and "stopped before it finished" in job.error.message
        assert str(first.process.pid) in job.error.message
        assert lease.read_record(root)["url"] == second.base_url
        started = client.fine_tuning.jobs.create(training_file=train.id, model=BASE, hyperparameters={"n_epochs": 1})
        assert started.status == "validating_files"
    finally:
        for handle in (first, second):
            if handle is not None:
                handle.stop()


def test_the_serving_record_is_readable_by_the_user_only(home):
    handle = spawn_server(home=home, tiny=True)
    try:
        record = home / "local-backend" / lease.RECORD
        assert stat.S_IMODE(record.stat().st_mode) == 0o600
        assert json.loads(record.read_text())["key"] == handle.api_key
    finally:
        handle.stop()
    assert not record.exists()  # a server that stops takes its record away


def test_a_spawned_backend_gets_its_key_by_environment_not_argv(home):
    """A random key starts with "-" once in 64 (token_urlsafe): passed as `--api-key KEY` argparse took it
    for an option and the server exited with code 2 (seen in a fresh-clone run). Nor should a key sit on
    a command line, which every local user can read."""
    key = "-starts-with-a-dash-" + "x" * 16
    handle = spawn_server(home=home, tiny=True, api_key=key)
    try:
        assert json.loads((home / "local-backend" / lease.RECORD).read_text())["key"] == key
        assert key not in Path(f"/proc/{handle.process.pid}/cmdline").read_text()
    finally:
        handle.stop()


def test_a_keyless_cli_command_uses_the_backend_serving_the_workspace(home, tmp_path):
    """Before: the command started its own backend and runner, trained the job itself and left it
    'running' when it exited."""
    server = spawn_server(home=home, tiny=True)
    try:
        data = tmp_path / "train.jsonl"
        data.write_bytes(chat_file(10))
        env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
        env.update(DISTILL_HOME=str(home), DISTILL_LOCAL_TINY="1", PYTHONPATH=str(ROOT))
        proc = subprocess.run([sys.executable, "-m", "pipeline", "finetune", str(data), "--model", BASE,
                               "--epochs", "1", "--wait", "--poll", "0.5", "--json", "--yes"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = json.loads(proc.stdout)
        assert result["status"] == "succeeded"
        job = Store(home / "local-backend").get_job(result["job_id"])
        assert job["_runner_pid"] == server.process.pid  # trained by the serving process
        models = [m.id for m in server.client().models.list()]
        assert result["fine_tuned_model"] in models
    finally:
        server.stop()
