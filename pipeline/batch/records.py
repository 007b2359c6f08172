"""A batch's record in the workspace: one folder per batch, so a batch survives a day away.

`visitors/<visitor>/batches/<id>/` (the CLI's own: `<workspace>/batches/<id>/`) holds `record.json`
(written atomically: a reader never sees half of it), `requests.jsonl` (the request file),
`output-<n>.jsonl` / `errors-<n>.jsonl` (part n's results, downloaded streamed) and, once the results
are in the draft or on the scoreboard, `collected.json`. No key is ever written: `endpoint` is the
endpoint's name (or the CLI's base URL) and the caller brings a client for it.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from pipeline import atomic, workspace
from pipeline.errors import InputError

WINDOW_S = 24 * 3600  # completion_window "24h"
TERMINAL = ("completed", "failed", "expired", "cancelled")
#: OpenAI's batch statuses, plus ours: "built" (not submitted) and "collected" (results taken in).
STATES = ("built", "validating", "in_progress", "finalizing", "cancelling", *TERMINAL, "collected")


@dataclass
class Part:
    """One provider batch: OpenAI runs one model per batch, so an evaluation has one part per model."""

    model: str
    #: Line numbers (0-based) of requests.jsonl this part sends.
    first_line: int
    lines: int
    batch_id: str | None = None
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    status: str = "built"
    counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})
    created_at: float | None = None
    expires_at: float | None = None
    completed_at: float | None = None
    errors: list[str] = field(default_factory=list)
    #: Output/error files are on disk (downloaded, or imported from elsewhere).
    downloaded: bool = False
    #: The request file of the batch folder this part sends from (answer checks have their own).
    file: str = "requests.jsonl"


@dataclass
class BatchRecord:
    id: str
    kind: str  # "generate" | "eval"
    title: str
    endpoint: str
    visitor: str | None
    created_at: float
    requests: int
    parts: list[Part]
    state: str = "built"
    estimate: dict[str, Any] = field(default_factory=dict)
    #: What collect needs to turn results into examples or scores (kind-specific, no secrets).
    plan: dict[str, Any] = field(default_factory=dict)
    retry_of: str | None = None
    collected: dict[str, Any] | None = None

    # -- where its files are ------------------------------------------------------------------
    @property
    def folder(self) -> Path:
        return batches_dir(self.visitor) / self.id

    @property
    def requests_path(self) -> Path:
        return self.folder / "requests.jsonl"

    def output_path(self, n: int) -> Path:
        return self.folder / f"output-{n}.jsonl"

    def error_path(self, n: int) -> Path:
        return self.folder / f"errors-{n}.jsonl"

    # -- what the lists show -----------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        out = {"total": 0, "completed": 0, "failed": 0}
        for p in self.parts:
            for k in out:
                out[k] += int(p.counts.get(k) or 0)
        out["total"] = max(out["total"], self.requests)
        return out

    def progress(self) -> float:
        c = self.counts()
        return min(1.0, (c["completed"] + c["failed"]) / c["total"]) if c["total"] else 0.0

    def expected_by(self) -> float | None:
        """When the provider promises to be done: its expiry, else created + the 24 h window."""
        times = [p.expires_at or (p.created_at + WINDOW_S if p.created_at else None) for p in self.parts]
        known = [t for t in times if t]
        return max(known) if known else None

    def finished(self) -> bool:
        return self.state == "collected" or all(p.status in TERMINAL for p in self.parts)

    def describe(self) -> str:
        c = self.counts()
        line = f"{self.id} · {self.kind} · {self.state} {c['completed']}/{c['total']}"
        if c["failed"]:
            line += f" ({c['failed']} failed)"
        due = self.expected_by()
        if due and not self.finished():
            line += " · expected by " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(due))
        return line

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "counts": self.counts(), "progress": round(self.progress(), 4),
                "expected_by": self.expected_by()}


def batches_dir(visitor: str | None) -> Path:
    return workspace.visitor_dir(visitor, "batches") if visitor else workspace.subdir("batches")


def new_id(prefix: str) -> str:
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def save_batch(record: BatchRecord) -> None:
    path = record.folder / "record.json"
    with atomic.locked(path):
        atomic.write_json(path, asdict(record))


def _from_json(raw: dict[str, Any]) -> BatchRecord:
    known = {f.name for f in fields(BatchRecord)}
    data = {k: v for k, v in raw.items() if k in known}
    part_keys = {f.name for f in fields(Part)}
    data["parts"] = [Part(**{k: v for k, v in p.items() if k in part_keys}) for p in raw.get("parts", [])]
    return BatchRecord(**data)


def load_batch(visitor: str | None, batch_id: str) -> BatchRecord:
    folder = batches_dir(visitor)
    path = folder / batch_id / "record.json"
    if "/" in batch_id or batch_id.startswith(".") or not path.is_file():
        known = ", ".join(r.id for r in list_batches(visitor)[:5]) or "none yet"
        raise InputError(f"No batch named '{batch_id}' here (recent: {known}). "
                         "`python -m pipeline batches list` shows them all.")
    try:
        return _from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"The record of batch {batch_id} is damaged ({exc}); its files are in {path.parent}.") from exc


def list_batches(visitor: str | None) -> list[BatchRecord]:
    """The owner's batches, newest first (a damaged record is skipped, not fatal)."""
    out = []
    for path in batches_dir(visitor).glob("*/record.json"):
        try:
            out.append(_from_json(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(out, key=lambda r: (r.created_at, r.id), reverse=True)
