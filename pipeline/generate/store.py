"""The files of a generation run, written so that a crash, a cancel or a re-run loses nothing.

- `OUT.jsonl`: the chat examples, one a line, appended and flushed the moment each is finished. Only
  `{"messages": [...]}` (plus keys a source example already had) so it is a valid fine-tuning file.
- `OUT.failed.jsonl`: replies that did not parse, duplicates and examples whose answer check
  disagreed, each with its raw text and reason, for review. Nothing is dropped silently.
- `OUT.answers.jsonl`: the final answer of each verifiable example, keyed by a hash of its messages,
  kept apart from the training file so the file stays plain chat data and answers can still be checked.
- `OUT.run.json`: provenance (template, teacher, parameters, counts, cost) and what a resumed run
  needs (setup outputs such as the custom system prompt, how many calls were made).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pipeline import atomic
from pipeline.errors import InputError


def sidecar(out: Path, kind: str) -> Path:
    return out.with_name(f"{out.stem}.{kind}{'.json' if kind == 'run' else '.jsonl'}")


def example_id(example: dict) -> str:
    blob = json.dumps(example.get("messages"), ensure_ascii=False, sort_keys=True)
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()[:16]


def load_existing(out: Path) -> list[dict]:
    """Examples already in the output file. A half-written last line (a crash mid-write) is cut off."""
    if not out.exists():
        return []
    try:
        text = out.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"The output file {out} exists but cannot be read ({exc}). Pick another --out.") from exc
    examples = []
    good_end = 0
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        if line.strip():
            try:
                ex = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{out} has a line that is not JSON ({exc}); it is not a file this "
                                 "command wrote. Pick another --out.") from exc
            if not isinstance(ex, dict) or not isinstance(ex.get("messages"), list):
                raise InputError(f"{out} has a line without a 'messages' list; pick another --out.")
            examples.append(ex)
        good_end += len(line.encode("utf-8"))
    if good_end < len(text.encode("utf-8")):
        with out.open("r+b") as fh:
            fh.truncate(good_end)
    return examples


class RunFiles:
    """Append-at-once writers for one run's files."""

    def __init__(self, out: Path) -> None:
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        self.failed_path = sidecar(out, "failed")
        self.answers_path = sidecar(out, "answers")
        self.run_path = sidecar(out, "run")

    def _append(self, path: Path, record: dict) -> None:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            # Flushed to the OS at once: a killed process keeps it. No fsync: at ~5 ms a call it would
            # stall the event loop for every example (it only guards against power loss).
            fh.flush()

    def write_example(self, example: dict, final_answer: str | None, meta: dict[str, Any]) -> None:
        self._append(self.out, example)
        if final_answer is not None:
            self._append(self.answers_path, {"id": example_id(example), "final_answer": final_answer, **meta})

    def write_failure(self, record: dict[str, Any]) -> None:
        self._append(self.failed_path, record)

    def load_state(self) -> dict[str, Any]:
        if not self.run_path.exists():
            return {}
        try:
            return json.loads(self.run_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}  # a damaged state only costs the provenance of earlier runs

    def save_state(self, state: dict[str, Any]) -> None:
        atomic.write_json(self.run_path, state, indent=2)


def load_failures(out: Path) -> list[dict]:
    path = sidecar(out, "failed")
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_examples(path: Path) -> list[dict]:
    """Chat examples from a JSONL file (paraphrase's --source)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read {path}: {exc}") from exc
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            ex = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} line {i} is not JSON ({exc.msg}).") from exc
        if isinstance(ex, dict) and isinstance(ex.get("messages"), list) and \
                any(isinstance(m, dict) and m.get("role") == "user" for m in ex["messages"]):
            out.append(ex)
    if not out:
        raise InputError(f"{path} has no chat examples with a user turn to rewrite.")
    return out
