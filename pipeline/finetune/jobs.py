"""Fine-tuning jobs through the openai SDK: upload, create, list, retrieve, cancel, events, checkpoints.

The same calls work against OpenAI and the embedded local backend (which implements OpenAI's
/v1/files and /v1/fine_tuning/jobs), so there is one code path. Functions take an `openai.OpenAI`
client and return the SDK's own typed objects; errors are the SDK's (pipeline.errors.explain turns
them into messages) or ours (InputError for bad hyperparameters).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pipeline.errors import InputError

AUTO = "auto"
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
ACTIVE = frozenset({"validating_files", "queued", "running", "pausing", "paused"})

#: (name, python type, lowest, highest) per hyperparameter, limits from OpenAI's OpenAPI spec.
_HYPER: dict[str, tuple[type, float, float]] = {
    "n_epochs": (int, 1, 50),
    "batch_size": (int, 1, 256),
    "learning_rate_multiplier": (float, 0, float("inf")),
}


def parse_hyperparameter(name: str, value: Any) -> int | float | str:
    """"auto" / None / "" -> "auto"; otherwise a number inside OpenAI's limits, or InputError."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", AUTO)):
        return AUTO
    kind, low, high = _HYPER[name]
    try:
        number = float(value)
        if kind is int:
            if number != int(number):
                raise ValueError
            number = int(number)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be 'auto' or a {'whole ' if kind is int else ''}number, "
                         f"not {value!r}.") from None
    if kind is float and number <= low or kind is int and not low <= number <= high:
        bound = f"between {int(low)} and {int(high)}" if kind is int else "greater than 0"
        raise InputError(f"{name} must be {bound} (got {value}).")
    return number


def supervised_method(n_epochs: Any = AUTO, batch_size: Any = AUTO,
                      learning_rate_multiplier: Any = AUTO) -> dict[str, Any]:
    """The `method` body OpenAI takes now that top-level `hyperparameters` is deprecated."""
    hyper = {
        "n_epochs": parse_hyperparameter("n_epochs", n_epochs),
        "batch_size": parse_hyperparameter("batch_size", batch_size),
        "learning_rate_multiplier": parse_hyperparameter("learning_rate_multiplier",
                                                         learning_rate_multiplier),
    }
    return {"type": "supervised", "supervised": {"hyperparameters": hyper}}


def examples_to_jsonl(examples: Iterable[dict]) -> bytes:
    return "".join(json.dumps(ex, ensure_ascii=False) + "\n" for ex in examples).encode("utf-8")


def upload_examples(client: Any, examples: Iterable[dict], filename: str) -> str:
    """Upload chat examples as a JSONL file with purpose fine-tune; returns the file id."""
    if not filename.endswith(".jsonl"):
        filename += ".jsonl"  # OpenAI refuses fine-tune uploads whose name is not .jsonl
    uploaded = client.files.create(file=(filename, examples_to_jsonl(examples), "application/jsonl"),
                                   purpose="fine-tune")
    return uploaded.id


def create_job(client: Any, *, model: str, training_file: str, validation_file: str | None = None,
               suffix: str | None = None, seed: int | None = None, n_epochs: Any = AUTO,
               batch_size: Any = AUTO, learning_rate_multiplier: Any = AUTO,
               metadata: dict[str, str] | None = None) -> Any:
    """Create a supervised fine-tuning job; returns the SDK's FineTuningJob."""
    suffix = (suffix or "").strip() or None
    if suffix is not None and len(suffix) > 64:
        raise InputError("The suffix can be at most 64 characters.")
    kwargs: dict[str, Any] = {
        "model": model,
        "training_file": training_file,
        "method": supervised_method(n_epochs, batch_size, learning_rate_multiplier),
    }
    # Only send what was chosen, so the provider's defaults apply to the rest.
    optional = {"validation_file": validation_file, "suffix": suffix, "seed": seed, "metadata": metadata}
    kwargs.update({k: v for k, v in optional.items() if v is not None})
    return client.fine_tuning.jobs.create(**kwargs)


def list_jobs(client: Any, limit: int = 20) -> list[Any]:
    """The provider's most recent jobs (first page only: enough to re-attach and to pick one)."""
    return list(client.fine_tuning.jobs.list(limit=limit).data)


def retrieve_job(client: Any, job_id: str) -> Any:
    return client.fine_tuning.jobs.retrieve(job_id)


def cancel_job(client: Any, job_id: str) -> Any:
    return client.fine_tuning.jobs.cancel(job_id)


def list_checkpoints(client: Any, job_id: str, limit: int = 10) -> list[Any]:
    return list(client.fine_tuning.jobs.checkpoints.list(job_id, limit=limit).data)


def new_events(client: Any, job_id: str, seen: set[str], *, page_size: int = 100,
               max_pages: int = 20) -> list[Any]:
    """Events not in `seen`, oldest first.

    Providers list events newest first and page backwards with `after`; we stop at the first
    event we already have, so each poll fetches only what is new (a long job has thousands).
    """
    fresh: list[Any] = []
    after: str | None = None
    for _ in range(max_pages):
        kwargs: dict[str, Any] = {"limit": page_size}
        if after:
            kwargs["after"] = after
        page = client.fine_tuning.jobs.list_events(job_id, **kwargs)
        stop = False
        for event in page.data:
            if event.id in seen:
                stop = True
                break
            fresh.append(event)
        if stop or not page.has_more or not page.data:
            break
        after = page.data[-1].id
    fresh.reverse()  # pages come newest first
    return fresh


def result_csv(client: Any, job: Any) -> str | None:
    """The text of a finished job's result file (step-by-step metrics), or None when it has none."""
    files = getattr(job, "result_files", None) or []
    if not files:
        return None
    return client.files.content(files[0]).text


def job_error_message(job: Any) -> str | None:
    """The provider's reason for a failed job, in words a user can act on; None if not failed."""
    if getattr(job, "status", None) != "failed":
        return None
    err = getattr(job, "error", None)
    message = (getattr(err, "message", None) or "").strip() or "The provider gave no reason."
    code = getattr(err, "code", None)
    param = getattr(err, "param", None)
    where = f" (code {code}{', in ' + param if param else ''})" if code else ""
    hint = ""
    if param in ("training_file", "validation_file") or (code or "").startswith("invalid_"):
        hint = " Fix the file (the Dataset tab lists problems line by line) and start a new job."
    return f"The fine-tuning job failed on the provider's side: {message}{where}.{hint}".replace("..", ".")
