"""A training process started before its job, so a fine-tune does not wait for torch to import.

`python -m pipeline.local.trainer JOB_DIR` spends ~6 s importing torch, transformers, trl and peft
before it reads its job (docs/bench/demo.md): the whole of that while the visitor watches. The job
runner therefore keeps one *standby*: `python -m pipeline.local.trainer --standby`, which imports all
of that at idle priority, says so on stdout, and waits for one line on stdin: the JOB_DIR. From then on
it is the job's training process exactly as a fresh one would be: same spec.json, same JSON lines on
stdout, stderr into JOB_DIR/trainer.log, cancel terminates it, its exit code is checked as before.

Rules that keep it honest:
- Its environment is fixed when it is spawned, so it is handed a job only if the environment a fresh
  process would get now is identical (a DISTILL_PRECISION or ATEN_CPU_CAPABILITY change discards it).
- It is handed a job only once its imports are done; one still importing (at idle priority, it could
  be starved by the app) is discarded and the job starts a fresh process, as it always did.
- The imports run in a helper thread niced to 19. On Linux a nice value belongs to one thread, so the
  main thread, which trains and creates torch's OpenMP workers, keeps the normal priority a fresh
  process has; an unprivileged process could not raise its priority back afterwards. Elsewhere (macOS
  nices the whole process) there is no standby.
- The runner starts one only while no job is waiting (when it starts, and when its queue empties), so
  it never competes with a fine-tune for the CPU.
- A job that comes while the standby still imports waits for it (`await_ready`) only while it gets the
  CPU, and never longer than a fresh process's imports take: right after the app starts (the demo's
  fine-tune comes ~8 s after the standby started, while decoding starved it) the job waited 0.5-2.1 s
  for it, where a fresh process imported for 4.1-4.2 s (docs/bench/demo.md).
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pipeline import config

log = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
READY = "standby_ready"
TAKEN = "standby_taken"  # says it has read its JOB_DIR: a standby killed just before cannot lose the job
ACK_TIMEOUT_S = 5.0  # it answers at once (its main thread has normal priority): silence means it is gone
NICE = 19  # the imports take only CPU nobody else wants
#: How long a job waits at most for a standby still importing: about what a fresh process's imports
#: take on a quiet 2-core machine (3.6-5.2 s in the demo), so waiting never costs much more than it saves.
AWAIT_LIMIT_S = 4.0
#: Waiting goes on only while the standby gets at least this share of a CPU, checked every AWAIT_WINDOW_S:
#: at idle priority beside a busy decoder it can get almost none, and then a fresh process is faster.
AWAIT_MIN_CPU_SHARE = 0.3
AWAIT_WINDOW_S = 0.5


#: Variables that change while a server runs and that no training reads: left out of the comparison.
VOLATILE = frozenset({"PYTEST_CURRENT_TEST"})  # pytest renames the running test in it


def trainer_env() -> dict[str, str]:
    """The environment of a training process started now (fresh or standby: they must not differ)."""
    # PASSIVE: idle OpenMP threads sleep at once. The decoder's short spin (pipeline/local/__init__.py)
    # is not passed on: measured (benchmarks/train_waits.py, docs/bench/recipe.md), two spinning threads
    # trained 0.81-1.02x the seconds per step alone natively, 0.9-1.9x under the AVX2 knobs, and 1.7-2.3x
    # beside a chat decoding on the same 2 cores. (Beside a chat the trainer now moves to one thread,
    # pipeline/local/train_threads.py, but it first measures two, and a spin would make those steps slow.)
    env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ,
           "PYTHONPATH": str(PROJECT_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("GOMP_SPINCOUNT", None)
    return env


def _same(env: dict[str, str] | None, now: dict[str, str]) -> bool:
    """Whether a standby spawned with `env` runs as a process spawned now would: every variable is
    compared (not only DISTILL_* and the torch/oneDNN/MKL knobs): a needless fresh start costs
    seconds, a stale setting would cost a wrong run."""
    return env is not None and ({k: v for k, v in env.items() if k not in VOLATILE}
                                == {k: v for k, v in now.items() if k not in VOLATILE})


def supported() -> bool:
    return sys.platform.startswith("linux") and config.TRAIN_STANDBY.get()


class Standby:
    """The job runner's side: at most one waiting process, handed over to the next job or discarded."""

    def __init__(self, log_path: Path):
        self._log_path = log_path  # the standby's stderr until it is handed a job (import warnings)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._env: dict[str, str] | None = None
        self._ready = False
        self._said = b""  # its stdout so far (a library may print while importing)
        self._broken_env: dict[str, str] | None = None

    def ensure(self) -> None:
        """Start a standby unless one is alive (and still valid for today's environment)."""
        with self._lock:
            if not supported():
                self._discard()
                return
            env = trainer_env()
            if self._proc is not None and self._proc.poll() is None and _same(self._env, env):
                return
            if self._proc is not None and _same(self._env, env):  # it ended: before or after its imports?
                self._poll_ready()  # reads what it said last
                if not self._ready:
                    # It died importing (a broken install?): jobs start fresh processes, which report
                    # why, instead of a standby failing again every few seconds.
                    self._broken_env = env
            self._discard()
            if _same(self._broken_env, env):
                return
            with open(self._log_path, "wb") as stderr:  # the child keeps its own descriptor
                self._proc = subprocess.Popen([sys.executable, "-m", "pipeline.local.trainer", "--standby"],
                                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                              cwd=PROJECT_ROOT, env=env)
            self._env, self._ready, self._said = env, False, b""
            log.info("training standby started (pid %s)", self._proc.pid)

    def await_ready(self) -> bool:
        """Wait for a standby still importing to say it is ready: True once it has; False at once when
        there is none (or it is stale or dead), after AWAIT_LIMIT_S, or as soon as it stops getting
        AWAIT_MIN_CPU_SHARE of a CPU (starved by busier processes, it would finish after a fresh one)."""
        with self._lock:
            proc = self._proc
            if proc is None or not _same(self._env, trainer_env()):
                return False
        start = time.monotonic()
        window_start, window_cpu = start, cpu_seconds(proc.pid)
        if window_cpu is None:  # no /proc to tell a starved standby from a busy one: no waiting
            return False
        while True:
            with self._lock:
                if self._proc is not proc or proc.poll() is not None:
                    return False
                if self._poll_ready():
                    log.info("training standby %s ready after the job waited %.1f s", proc.pid,
                             time.monotonic() - start)
                    return True
            now = time.monotonic()
            if now - start >= AWAIT_LIMIT_S:
                return False
            if now - window_start >= AWAIT_WINDOW_S:
                cpu = cpu_seconds(proc.pid)
                if cpu is None or (cpu - window_cpu) / (now - window_start) < AWAIT_MIN_CPU_SHARE:
                    log.info("training standby %s starved (or unreadable): not waited for", proc.pid)
                    return False
                window_start, window_cpu = now, cpu
            time.sleep(0.05)

    def hand_over(self, job_dir: Path) -> subprocess.Popen | None:
        """The standby, now training the job in `job_dir`; None (and no standby left) when there is no
        ready one whose environment is today's: the caller then starts a fresh process."""
        with self._lock:
            proc, env = self._proc, self._env
            if proc is None:
                return None
            same = _same(env, trainer_env())
            if not same or not self._poll_ready():
                why = "not ready" if same else "settings changed since it started"
                log.info("training standby %s discarded: %s", proc.pid, why)
                self._discard()
                return None
            self._proc, self._env = None, None  # it belongs to the job now
            try:
                proc.stdin.write(str(job_dir).encode() + b"\n")
                proc.stdin.close()
                taken = _read_line(proc, ACK_TIMEOUT_S) == json.dumps({"kind": TAKEN}).encode()
            except OSError:
                taken = False
            if not taken:  # it died (or hung) this instant: the job starts a fresh process
                log.warning("training standby %s did not take its job; starting a fresh process", proc.pid)
                proc.kill()
                proc.wait()
                return None
            return proc

    def shutdown(self) -> None:
        with self._lock:
            self._discard()

    def ready(self) -> int | None:
        """The pid of a standby whose imports are done, if there is one."""
        with self._lock:
            return self._proc.pid if self._proc is not None and self._poll_ready() else None

    def _poll_ready(self) -> bool:
        """Reads what the standby said so far without blocking: True once its imports are done."""
        proc = self._proc
        # Raw reads: nothing may sit in proc.stdout's buffer, which the job runner reads after the handover
        # (the standby writes nothing after its ready line until it is handed a job).
        while not self._ready and select.select([proc.stdout], [], [], 0)[0]:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break  # it exited
            self._said += chunk
            self._ready = json.dumps({"kind": READY}).encode() + b"\n" in self._said
        return self._ready and proc.poll() is None

    def _discard(self) -> None:
        proc, self._proc, self._env, self._ready = self._proc, None, None, False
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait()
            proc.stdin.close()
            proc.stdout.close()


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads) process `pid` has used, from /proc; None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)
    except (OSError, ValueError, IndexError):
        return None


def _read_line(proc: subprocess.Popen, timeout: float) -> bytes:
    """One line of its stdout, a byte at a time: what follows is the job's, read by the job runner."""
    line, deadline = b"", time.monotonic() + timeout
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            return b""
        byte = os.read(proc.stdout.fileno(), 1)
        if not byte:
            return b""
        line += byte
    return line.strip()


# -- the standby process's side ------------------------------------------------------------------
def _import_for_training() -> None:
    """Everything trainer.main imports, plus what its first model load and SFTTrainer pull in lazily."""
    os.nice(NICE)  # this thread only (Linux): see the module's docstring
    import torch  # noqa: F401
    from datasets import Dataset  # noqa: F401
    from peft import LoraConfig  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401
    from transformers.models.llama import modeling_llama  # noqa: F401 - resolved lazily at the first load
    from trl import SFTConfig, SFTTrainer  # noqa: F401

    from pipeline.local import precision  # noqa: F401
    from pipeline.local.sft_head import CompletionHeadSFTTrainer  # noqa: F401


def serve(train: Callable[[Path, float], int], die_with_parent: Callable[[], None]) -> int:
    """Import, say ready, wait for a JOB_DIR on stdin, then train it as a fresh process would."""
    die_with_parent()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            _import_for_training()
        except BaseException as exc:  # the runner sees this process end and starts fresh ones
            failed.append(exc)

    importer = threading.Thread(target=run, name="standby-imports")
    importer.start()
    importer.join()
    if failed:
        raise failed[0]
    sys.stdout.write(json.dumps({"kind": READY}) + "\n")
    sys.stdout.flush()
    line = sys.stdin.readline().strip()
    if not line:
        return 0  # discarded (stdin closed) before any job
    handed_over = time.perf_counter()
    job_dir = Path(line)
    # From here on stderr is the job's trainer.log, as for a fresh process (the runner created it).
    sys.stderr.flush()
    fd = os.open(job_dir / "trainer.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout.write(json.dumps({"kind": TAKEN}) + "\n")
    sys.stdout.flush()
    return train(job_dir, handed_over)
