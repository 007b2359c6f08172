"""Talk to the endpoint about a batch through the openai SDK: upload + create, follow, cancel, and
download the output and error files streamed to disk (a 10,000-line result never sits in memory).

Every function takes a SYNC `openai.OpenAI` client for `record.endpoint` (the caller makes it from
its settings; no key is stored) and saves the record before returning, so a restart finds it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pipeline import atomic
from pipeline.batch.build import URL
from pipeline.batch.records import TERMINAL, BatchRecord, Part, save_batch
from pipeline.errors import InputError, ProviderError, explain

APP = "distill-studio"
AZURE_URL = "/chat/completions"
_ORDER = ("built", "validating", "in_progress", "finalizing", "cancelling")


@contextlib.contextmanager
def _provider_errors(what: str) -> Iterator[None]:
    import openai  # here, not at the top: the SDK's types cost ~1 s of the app's first page

    try:
        yield
    except openai.NotFoundError as exc:
        raise ProviderError(f"{what}: the endpoint answered 404 ({explain(exc)}). It may not run batches: "
                            "export the request file and run it where batches run (OpenAI, Azure OpenAI, "
                            "vLLM run-batch), then import the results.") from exc
    except openai.APIError as exc:
        raise ProviderError(f"{what}: {explain(exc)}") from exc


def overall_state(record: BatchRecord) -> str:
    """One state for the record from its parts' statuses."""
    if record.state == "collected":
        return "collected"
    statuses = [p.status for p in record.parts]
    if all(s in TERMINAL for s in statuses):
        return "completed" if "completed" in statuses else statuses[0]
    return min((s for s in statuses if s not in TERMINAL), key=lambda s: _ORDER.index(s) if s in _ORDER else 1)


def _part_file(record: BatchRecord, n: int, part: Part, azure: bool = False) -> Path:
    """The lines a part sends: its whole request file when it is the only part sending from it, else a
    slice of it. Azure OpenAI's batch takes the path without the version (`/chat/completions`), so
    its copy says so."""
    source = record.folder / part.file
    if sum(p.file == part.file for p in record.parts) == 1 and not azure:
        return source
    path = record.folder / f"requests-{n}{'-azure' if azure else ''}.jsonl"
    if not path.exists():
        def write(tmp: str) -> None:
            with source.open(encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as dst:
                for i, line in enumerate(src):
                    if part.first_line <= i < part.first_line + part.lines:
                        dst.write(line.replace(f'"url": "{URL}"', f'"url": "{AZURE_URL}"', 1) if azure else line)
        atomic.write_with(path, write)
    return path


def _apply(part: Part, batch: Any) -> None:
    part.batch_id = batch.id
    part.status = batch.status
    counts = getattr(batch, "request_counts", None)
    if counts is not None:
        part.counts = {"total": counts.total or 0, "completed": counts.completed or 0, "failed": counts.failed or 0}
    part.created_at = batch.created_at or part.created_at
    part.expires_at = getattr(batch, "expires_at", None) or part.expires_at
    part.completed_at = (getattr(batch, "completed_at", None) or getattr(batch, "failed_at", None)
                         or getattr(batch, "expired_at", None) or getattr(batch, "cancelled_at", None))
    part.output_file_id = batch.output_file_id or part.output_file_id
    part.error_file_id = batch.error_file_id or part.error_file_id
    errors = getattr(getattr(batch, "errors", None), "data", None) or []
    part.errors = [f"line {e.line}: {e.message}" if getattr(e, "line", None) else str(e.message or e.code)
                   for e in errors]


def _created_before(client: Any, metadata: dict[str, str]) -> Any:
    """The batch a submit that died between create and saving the record already made (found by its
    metadata among the most recent), so submitting again never runs the requests twice."""
    import openai  # here, not at the top: the SDK's types cost ~1 s of the app's first page

    with contextlib.suppress(openai.APIError, TypeError, AttributeError):
        for batch in client.batches.list(limit=100).data:
            if (batch.metadata or {}).items() >= metadata.items():
                return batch
    return None


def submit(record: BatchRecord, client: Any) -> BatchRecord:
    """Upload each built part's request file (purpose "batch") and create its batch; parts already
    created are left alone, so a submit cut short can be called again. So are parts that never go to
    the provider: results imported from elsewhere, an empty second phase (both "completed" without a
    batch id) — sending them again would pay for every request twice."""
    if record.state == "collected":
        raise InputError(f"Batch {record.id} is already collected; build a new one to run it again.")
    import openai

    azure = isinstance(client, openai.AzureOpenAI)
    for n, part in enumerate(record.parts):
        if part.batch_id or part.status != "built":
            continue
        if not part.input_file_id:
            with _provider_errors("Uploading the request file failed"), \
                    _part_file(record, n, part, azure).open("rb") as fh:
                part.input_file_id = client.files.create(file=fh, purpose="batch").id
            save_batch(record)  # a retry after a crash here reuses the upload
        metadata = {"app": APP, "record": record.id, "kind": record.kind, "part": str(n)}
        batch = _created_before(client, metadata)
        if batch is None:
            with _provider_errors("Creating the batch failed"):
                batch = client.batches.create(input_file_id=part.input_file_id, endpoint=AZURE_URL if azure else URL,
                                              completion_window="24h", metadata=metadata)
        _apply(part, batch)
        record.state = overall_state(record)
        save_batch(record)
    return record


def _download(client: Any, file_id: str, path: Path) -> None:
    def write(tmp: str) -> None:
        with client.files.with_streaming_response.content(file_id) as resp, open(tmp, "wb") as fh:
            for chunk in resp.iter_bytes():
                fh.write(chunk)
    with _provider_errors(f"Downloading the results file {file_id} failed"):
        atomic.write_with(path, write)


def refresh(record: BatchRecord, client: Any) -> BatchRecord:
    """Ask the endpoint how each part is doing; download a finished part's output and error files."""
    for n, part in enumerate(record.parts):
        if not part.batch_id or part.downloaded:
            continue
        with _provider_errors(f"Asking about batch {part.batch_id} failed"):
            _apply(part, client.batches.retrieve(part.batch_id))
        if part.status in TERMINAL:
            if part.output_file_id:
                _download(client, part.output_file_id, record.output_path(n))
            if part.error_file_id:
                _download(client, part.error_file_id, record.error_path(n))
            part.downloaded = True
    record.state = overall_state(record)
    save_batch(record)
    return record


def cancel(record: BatchRecord, client: Any) -> BatchRecord:
    """Ask the endpoint to stop every part still running (finished requests stay collectable)."""
    for part in record.parts:
        if part.batch_id and part.status not in TERMINAL:
            with _provider_errors(f"Cancelling batch {part.batch_id} failed"):
                _apply(part, client.batches.cancel(part.batch_id))
        elif not part.batch_id:
            part.status = "cancelled"
    record.state = overall_state(record)
    save_batch(record)
    return record


def wait(record: BatchRecord, client: Any, *, poll: float = 10.0,
         on_update: Callable[[BatchRecord], None] | None = None) -> BatchRecord:
    """Follow a batch until every part has finished (refresh every `poll` seconds); Ctrl-C stops
    following, never the batch."""
    while True:
        record = refresh(record, client)
        if on_update is not None:
            on_update(record)
        if record.finished():
            return record
        time.sleep(poll)
