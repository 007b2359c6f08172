"""Persistence for the local backend: uploaded files, fine-tuning jobs, their events and adapters.

Layout under the backend root (a workspace folder):
    files/<file-id>.json (metadata) + files/<file-id>.data (content)
    jobs/<ftjob-id>/job.json, events.jsonl, adapter/, trainer.log, spec.json
    batches/<batch-id>/batch.json, output.jsonl + errors.jsonl (results appended as requests finish)
Ids are checked against a strict pattern before they become paths, so no id can reach outside.
JSON is written to a temporary file and renamed, so a crash never leaves half a record.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

FILE_ID = re.compile(r"^file-[a-f0-9]{24}$")
JOB_ID = re.compile(r"^ftjob-[a-f0-9]{24}$")
BATCH_ID = re.compile(r"^batch_[a-f0-9]{24}$")


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=1))
    tmp.replace(path)


class Store:
    """Files and jobs on disk, guarded by one lock (the server is the only writer)."""

    def __init__(self, root: Path):
        self.root = root
        self.files_dir = root / "files"
        self.jobs_dir = root / "jobs"
        self.batches_dir = root / "batches"
        for folder in (self.files_dir, self.jobs_dir, self.batches_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()

    # -- files -----------------------------------------------------------------------------------
    def file_data_path(self, file_id: str) -> Path | None:
        if not FILE_ID.match(file_id or ""):
            return None
        path = self.files_dir / f"{file_id}.data"
        return path if path.is_file() else None

    def add_file(self, content: bytes, filename: str, purpose: str) -> dict:
        file_id = new_id("file")
        meta = {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                "filename": os.path.basename(filename or "upload.jsonl")[:255], "purpose": purpose,
                "status": "processed"}
        with self.lock:
            (self.files_dir / f"{file_id}.data").write_bytes(content)
            _write_json(self.files_dir / f"{file_id}.json", meta)
        return meta

    def add_file_from(self, source: Path, filename: str, purpose: str) -> dict:
        """A file whose content is another file on disk (a batch's results: copied, not read whole)."""
        import shutil

        file_id = new_id("file")
        meta = {"id": file_id, "object": "file", "bytes": source.stat().st_size, "created_at": int(time.time()),
                "filename": filename, "purpose": purpose, "status": "processed"}
        with self.lock:
            shutil.copyfile(source, self.files_dir / f"{file_id}.data")
            _write_json(self.files_dir / f"{file_id}.json", meta)
        return meta

    def get_file(self, file_id: str) -> dict | None:
        if not FILE_ID.match(file_id or ""):
            return None
        path = self.files_dir / f"{file_id}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def list_files(self) -> list[dict]:
        with self.lock:
            metas = [json.loads(p.read_text()) for p in self.files_dir.glob("file-*.json")]
        return sorted(metas, key=lambda m: (m["created_at"], m["id"]), reverse=True)

    def delete_file(self, file_id: str) -> bool:
        if self.get_file(file_id) is None:
            return False
        with self.lock:
            for suffix in (".json", ".data"):
                (self.files_dir / f"{file_id}{suffix}").unlink(missing_ok=True)
        return True

    # -- jobs ------------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path | None:
        if not JOB_ID.match(job_id or ""):
            return None
        path = self.jobs_dir / job_id
        return path if (path / "job.json").is_file() else None

    def create_job(self, job: dict) -> dict:
        path = self.jobs_dir / job["id"]
        path.mkdir(parents=True)
        with self.lock:
            _write_json(path / "job.json", job)
        return job

    def get_job(self, job_id: str) -> dict | None:
        path = self.job_dir(job_id)
        if path is None:
            return None
        with self.lock:
            return json.loads((path / "job.json").read_text())

    def update_job(self, job_id: str, **changes: Any) -> dict:
        with self.lock:
            job = self.get_job(job_id)
            job.update(changes)
            _write_json(self.jobs_dir / job_id / "job.json", job)
            return job

    def list_jobs(self) -> list[dict]:
        with self.lock:
            jobs = [json.loads(p.read_text()) for p in self.jobs_dir.glob("ftjob-*/job.json")]
        return sorted(jobs, key=lambda j: (j["created_at"], j.get("_seq", 0)), reverse=True)

    def add_event(self, job_id: str, message: str, *, level: str = "info", type_: str = "message",
                  data: dict | None = None) -> dict:
        event = {"id": new_id("ftevent"), "object": "fine_tuning.job.event", "created_at": int(time.time()),
                 "level": level, "message": message, "data": data or {}, "type": type_}
        with self.lock, open(self.jobs_dir / job_id / "events.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event, ensure_ascii=False) + "\n")
        return event

    def events(self, job_id: str) -> list[dict]:
        """Events oldest first."""
        path = self.jobs_dir / job_id / "events.jsonl"
        if not path.is_file():
            return []
        with self.lock:
            return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def adapter_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id / "adapter"

    # -- batches ---------------------------------------------------------------------------------
    def batch_dir(self, batch_id: str) -> Path | None:
        if not BATCH_ID.match(batch_id or ""):
            return None
        path = self.batches_dir / batch_id
        return path if (path / "batch.json").is_file() else None

    def create_batch(self, batch: dict) -> dict:
        path = self.batches_dir / batch["id"]
        path.mkdir(parents=True)
        with self.lock:
            _write_json(path / "batch.json", batch)
        return batch

    def get_batch(self, batch_id: str) -> dict | None:
        path = self.batch_dir(batch_id)
        if path is None:
            return None
        with self.lock:
            return json.loads((path / "batch.json").read_text())

    def update_batch(self, batch_id: str, **changes: Any) -> dict:
        with self.lock:
            batch = self.get_batch(batch_id)
            batch.update(changes)
            _write_json(self.batches_dir / batch_id / "batch.json", batch)
            return batch

    def list_batches(self) -> list[dict]:
        """Newest first."""
        with self.lock:
            batches = [json.loads(p.read_text()) for p in self.batches_dir.glob("batch_*/batch.json")]
        return sorted(batches, key=lambda b: (b["created_at"], b.get("_seq", 0)), reverse=True)
