"""One job runner per workspace, and how a second process finds the backend that already serves it.

The runner lease is an OS lock (`fcntl.flock`) on `<backend root>/runner.lock`, held for the life of
the process that took it: the kernel drops it when that process dies however it dies (SIGKILL
included), so a dead runner never blocks the next one, and no two live processes run jobs at once.
The trainer child does not inherit it (Python opens files non-inheritable and Popen closes fds).

The holder advertises itself in `<root>/server.json` (url, key, pid), created readable by the user
only, because the key opens the API. A keyless CLI command reads it, checks that the server answers
with that key, and uses it instead of starting its own. `start.lock` makes "look for a server, else
start one" atomic across processes, so two commands started together do not both start one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

RECORD = "server.json"


class RunnerLease:
    """The exclusive right to run (and recover) the fine-tuning jobs under `root`."""

    def __init__(self, root: Path):
        self.path = root / "runner.lock"
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())  # for messages only; the lock is what counts
        self._fd = fd
        return True

    def holder_pid(self) -> int | None:
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


@contextlib.contextmanager
def start_lock(root: Path) -> Iterator[None]:
    """Serialises "find the serving backend, else start one" between processes on one workspace."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / "start.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_record(root: Path, url: str, key: str, tiny: bool) -> None:
    """Advertise this process's server; the file is created 0600 before the key is written."""
    tmp = root / f"{RECORD}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"url": url, "key": key, "pid": os.getpid(), "tiny": tiny}, fh)
    tmp.replace(root / RECORD)


def read_record(root: Path) -> dict | None:
    try:
        record = json.loads((root / RECORD).read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(record, dict) and isinstance(record.get("url"), str) and isinstance(record.get("key"), str)
    return record if ok else None


def remove_record(root: Path) -> None:
    """Remove the record if it is this process's (a successor may have written its own)."""
    record = read_record(root)
    if record is not None and record.get("pid") == os.getpid():
        (root / RECORD).unlink(missing_ok=True)


def answers(url: str, key: str, timeout: float = 3.0, patience: float = 30.0) -> bool:
    """Whether a backend answers at `url` with `key` (a reused port answers 401: another server).

    Nothing listening is known at once. A server that accepts but is slow to answer (on a busy 2-core
    machine) is alive: it gets up to `patience` seconds, because taking it for dead starts a second
    backend, with a second copy of the model in memory, on the same workspace."""
    import httpx

    for wait in (timeout, patience - timeout):  # the second ask waits out the rest of the patience
        if wait <= 0:
            break
        try:
            return httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {key}"}, timeout=wait).status_code == 200
        except httpx.TimeoutException:
            continue
        except httpx.HTTPError:
            return False
    return False
