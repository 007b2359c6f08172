"""The batch runner: runs /v1/batches through the engine at low priority, one batch at a time.

It lives in the process that holds the workspace's runner lease (like the job runner), on its own
thread with its own event loop. Interactive chat comes first: at most IN_FLIGHT batch requests are
in the engine at once, no new one goes in while a chat waits or decodes, and the engine admits chats
before batch requests and decodes batch requests only while no chat does (engine.low_priority).

Each finished request is appended to the batch's output.jsonl or errors.jsonl as soon as it ends,
so a backend that stops mid-batch resumes where it was: a restarted runner skips the custom_ids
already written (no request is lost or written twice; a line cut short by a crash runs again).

States (OpenAI's): validating -> in_progress -> finalizing -> completed; failed when the input file
cannot be read; cancelling -> cancelled (requests done so far are kept); expired when the 24 h window
ends first (the requests not run go to the error file with code batch_expired).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from pipeline.local import batchfile
from pipeline.local.errors import APIError, error_body
from pipeline.local.schemas import ChatCompletionRequest, validate_value

log = logging.getLogger(__name__)
# Batch requests in the engine at once. They pause while a chat decodes (engine._stepping); more of
# them gave the batch more throughput and the chat a longer wait. SmolLM2, two runs at load 9-14
# (docs/bench/batch_priority.md): 4 gave 1.26-1.37x the requests/s of 2, but a chat took 1.29-1.72x
# its idle time against 1.22-1.23x with 2. Chat comes first: 2.
IN_FLIGHT = 2
POLL_S = 1.0  # how often a busy runner looks for a cancel or the window's end
IDLE_S = 30.0  # an idle runner is woken by create and cancel; this is only a safety net
HOLD_S = 0.2  # how often a runner holding back for chat looks again (seldom: it shares the GIL with decoding)
SHUTDOWN_JOIN_S = 10
ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
FINAL = ("completed", "failed", "expired", "cancelled")


def _now() -> int:
    return int(time.time())


def usage(input_tokens: int, output_tokens: int) -> dict:
    return {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens}


class BatchRunner:
    def __init__(self, backend: Any):
        self.backend, self.store = backend, backend.store
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._main: asyncio.Task | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._thread_main, name="batch-runner", daemon=True)
        self._thread.start()
        self._started.wait()

    # -- control (any thread) --------------------------------------------------------------------
    def wake(self) -> None:
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def shutdown(self) -> None:
        """Stop between requests: those in the engine are cancelled (not written), so a restart runs them."""
        if self._loop is not None and self._main is not None:
            self._loop.call_soon_threadsafe(self._main.cancel)
        self._thread.join(timeout=SHUTDOWN_JOIN_S)

    # -- the loop --------------------------------------------------------------------------------
    def _thread_main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        self._main = asyncio.current_task()
        self._started.set()
        try:
            while True:
                batch = self._next()
                if batch is None:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), IDLE_S)
                    self._wake.clear()
                    continue
                try:
                    await self._run(batch)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a bug must fail this batch, not stop every later one
                    log.exception("batch %s failed", batch["id"])
                    self._fail(batch["id"], "server_error", f"The local backend failed on this batch: {exc}")
        except asyncio.CancelledError:
            pass

    def _next(self) -> dict | None:
        """The oldest batch that still has work (in_progress ones first: a restart resumes them)."""
        active = [b for b in reversed(self.store.list_batches()) if b["status"] in ACTIVE]
        return next((b for b in active if b["status"] != "validating"), active[0] if active else None)

    def _paths(self, batch_id: str) -> tuple[Path, Path]:
        folder = self.store.batches_dir / batch_id
        return folder / "output.jsonl", folder / "errors.jsonl"

    def _fail(self, batch_id: str, code: str, message: str, line: int | None = None) -> None:
        errors = {"object": "list", "data": [{"code": code, "message": message, "param": None, "line": line}]}
        self.store.update_batch(batch_id, status="failed", failed_at=_now(), errors=errors)

    # -- one batch -------------------------------------------------------------------------------
    async def _run(self, batch: dict) -> None:
        batch_id = batch["id"]
        source = self.store.file_data_path(batch["input_file_id"])
        if batch["status"] in ("validating", "in_progress") and source is None:
            self._fail(batch_id, "file_not_found", f"The input file '{batch['input_file_id']}' was deleted "
                       "before its requests ran. Upload it again and create a new batch.")
            return
        if batch["status"] == "validating":
            total = sum(1 for _ in batchfile.read_requests(source))
            counts = {"total": total, "completed": 0, "failed": 0}
            batch = self.store.update_batch(batch_id, status="in_progress", in_progress_at=_now(),
                                            request_counts=counts)
        if batch["status"] == "in_progress":
            batch = await self._requests(batch, source)
        await self._finish(batch)

    def _resume(self, batch: dict) -> tuple[set[str], dict, list[int]]:
        """What the result files already hold: done custom_ids, request counts, [input, output] tokens."""
        done: set[str] = set()
        counts = {"total": batch["request_counts"]["total"], "completed": 0, "failed": 0}
        tokens = [0, 0]
        for path, key in zip(self._paths(batch["id"]), ("completed", "failed"), strict=True):
            for item in batchfile.read_results(path):
                done.add(item["custom_id"])
                counts[key] += 1
                body = (item.get("response") or {}).get("body")
                for i, n in enumerate(batchfile.usage_of(body)):
                    tokens[i] += n
        return done, counts, tokens

    async def _requests(self, batch: dict, source: Path) -> dict:
        batch_id = batch["id"]
        done, counts, tokens = self._resume(batch)
        out_path, err_path = self._paths(batch_id)
        in_flight: set[asyncio.Task] = set()
        state = {"status": "in_progress"}

        def record(custom_id: str, status: int, body: dict) -> None:
            ok = status == 200
            with open(out_path if ok else err_path, "a", encoding="utf-8") as fh:
                fh.write(batchfile.result_line(custom_id, status, body))
                fh.flush()
                os.fsync(fh.fileno())
            counts["completed" if ok else "failed"] += 1
            for i, n in enumerate(batchfile.usage_of(body)):
                tokens[i] += n
            self.store.update_batch(batch_id, request_counts=dict(counts), usage=usage(*tokens))

        async def one(custom_id: str, raw_body: Any) -> None:
            status, body = await self._answer(raw_body)
            record(custom_id, status, body)

        def stopped() -> bool:
            now = self.store.get_batch(batch_id)
            if now["status"] != "in_progress":
                state["status"] = now["status"]  # cancelling
            elif _now() >= now["expires_at"]:
                state["status"] = "expired"
            return state["status"] != "in_progress"

        pending = ((n, r) for n, r in batchfile.read_requests(source) if r["custom_id"] not in done)
        for _, request in pending:
            while len(in_flight) >= IN_FLIGHT or self.backend.engine.interactive_busy():
                if stopped():
                    break
                if in_flight and len(in_flight) >= IN_FLIGHT:
                    _, in_flight = await asyncio.wait(in_flight, timeout=POLL_S, return_when=asyncio.FIRST_COMPLETED)
                else:
                    await asyncio.sleep(HOLD_S)
            if state["status"] != "in_progress" or stopped():
                break
            in_flight.add(asyncio.ensure_future(one(request["custom_id"], request["body"])))
        while in_flight and not stopped():
            _, in_flight = await asyncio.wait(in_flight, timeout=POLL_S)
        for task in in_flight:  # cancelled or expired: what is still running stops and is not written
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        if state["status"] == "expired":
            self._expire_rest(batch_id, source, counts)
        changes: dict[str, Any] = {"request_counts": dict(counts), "usage": usage(*tokens)}
        with self.store.lock:  # a cancel that came in meanwhile wins over finalizing
            if self.store.get_batch(batch_id)["status"] == "in_progress":
                changes |= {"status": "finalizing", "finalizing_at": _now()}
                if state["status"] == "expired":
                    changes["_ending"] = "expired"
            return self.store.update_batch(batch_id, **changes)

    def _expire_rest(self, batch_id: str, source: Path, counts: dict) -> None:
        """The requests that never ran, in the error file with OpenAI's batch_expired error."""
        out_path, err_path = self._paths(batch_id)
        done = {item["custom_id"] for path in (out_path, err_path) for item in batchfile.read_results(path)}
        with open(err_path, "a", encoding="utf-8") as fh:
            for _, request in batchfile.read_requests(source):
                if request["custom_id"] not in done:
                    fh.write(batchfile.result_line(request["custom_id"], None, None, batchfile.EXPIRED))
                    counts["failed"] += 1
            fh.flush()
            os.fsync(fh.fileno())

    async def _answer(self, raw_body: Any) -> tuple[int, dict]:
        """(status, body) of one request: the interactive endpoint's code, at low priority."""
        from pipeline.local.routes_chat import complete

        try:
            body = await asyncio.to_thread(validate_value, raw_body, ChatCompletionRequest)
            return 200, await complete(body, self.backend, low_priority=True)
        except APIError as exc:
            return exc.status, error_body(exc.status, exc.message, exc.param, exc.code, exc.type)
        except Exception:  # as the endpoint answers a crash: a 500 for this request, the batch goes on
            log.exception("a batch request failed")
            return 500, error_body(500, "The local backend failed on this request; its log has the details.")

    async def _finish(self, batch: dict) -> None:
        """Publish the result files (purpose batch_output) and end the batch in its final state."""
        batch_id = batch["id"]
        changes: dict[str, Any] = {}
        for path, key, name in zip(self._paths(batch_id), ("output_file_id", "error_file_id"),
                                   ("output", "errors"), strict=True):
            if batch.get(key) is None and path.is_file() and path.stat().st_size:
                meta = self.store.add_file_from(path, f"{batch_id}_{name}.jsonl", "batch_output")
                changes[key] = meta["id"]
                self.store.update_batch(batch_id, **{key: meta["id"]})  # at once: a restart does not add it twice
        ending = "cancelled" if batch["status"] == "cancelling" else batch.get("_ending", "completed")
        changes |= {"status": ending, f"{ending}_at": _now()}
        self.store.update_batch(batch_id, **changes)
