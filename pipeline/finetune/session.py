"""Start a fine-tuning run end to end: check the model, preflight, upload, create the job.

The Fine-tune tab and `python -m pipeline finetune` both call `start_job`, so they refuse the same
things with the same messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import UnreadableFileError
from pipeline.finetune import jobs as ft
from pipeline.finetune.preflight import (
    Preflight,
    check_base_model,
    is_openai_hosted,
    offered_base_models,
    preflight,
    require_ready,
)


@dataclass
class Started:
    job: Any
    preflight: Preflight
    training_file: str
    validation_file: str | None


def load_examples(path: Path) -> Any:
    """A file the Dataset tab reads (chat JSONL, prompt/completion, CSV, Parquet) as a ReadResult."""
    from pipeline.dataset import read_dataset

    read = read_dataset(path)
    if not read.readable:
        reason = read.problems[0].message if read.problems else "no examples could be read"
        raise UnreadableFileError(f"Cannot use {path.name}: {reason}")
    return read


def check_and_preflight(client: Any, train: list[Any], model: str, *, validation: list[Any] | None = None,
                        n_epochs: Any = ft.AUTO, openai_hosted: bool | None = None,
                        auto_epochs: Callable[[int], int] | None = None, threshold_usd: float | None = None,
                        **read_info: Any) -> Preflight:
    """Is the model fine-tunable on this endpoint, and what does the data look like? (no upload)

    `read_info` (line_numbers, read_problems) passes through to preflight for data read from a file.
    """
    hosted = is_openai_hosted(client.base_url) if openai_hosted is None else openai_hosted
    check_base_model(model, offered_base_models(client, openai_hosted=hosted), openai_hosted=hosted)
    return preflight(train, model, validation=validation, n_epochs=n_epochs, auto_epochs=auto_epochs,
                     threshold_usd=threshold_usd, **read_info)


def start_job(client: Any, train: Path | list[Any], model: str, *,
              validation_path: Path | None = None, validation: list[Any] | None = None,
              n_epochs: Any = ft.AUTO, batch_size: Any = ft.AUTO, learning_rate_multiplier: Any = ft.AUTO,
              suffix: str | None = None, seed: int | None = None, metadata: dict[str, str] | None = None,
              confirmed: bool = False, openai_hosted: bool | None = None, name: str | None = None,
              read_problems: list[Any] | None = None, auto_epochs: Callable[[int], int] | None = None,
              on_progress: Callable[[str], None] | None = None, threshold_usd: float | None = None) -> Started:
    """Preflight, refuse on errors or unconfirmed cost, upload the file(s), create the job.

    `read_problems`: problems found while reading the source file (lines that were not examples).
    `auto_epochs`: the provider's own rule for n_epochs "auto" (see preflight), for its estimate.
    `threshold_usd`: the visitor's confirmation threshold (Settings); None: DISTILL_FINETUNE_CONFIRM_USD or $5.
    """
    say = on_progress or (lambda _msg: None)
    read_info: dict[str, Any] = {"read_problems": read_problems} if read_problems else {}
    if isinstance(train, Path):
        name = name or train.stem
        read = load_examples(train)
        train = read.examples
        read_info = {"line_numbers": read.line_numbers, "read_problems": read.problems}
    if validation_path is not None:
        validation = load_examples(validation_path).examples
    # Validate the hyperparameters before anything is uploaded.
    ft.supervised_method(n_epochs, batch_size, learning_rate_multiplier)
    pre = check_and_preflight(client, train, model, validation=validation, n_epochs=n_epochs,
                              openai_hosted=openai_hosted, auto_epochs=auto_epochs, threshold_usd=threshold_usd,
                              **read_info)
    for line in pre.summary_lines():
        say(line)
    require_ready(pre, confirmed=confirmed)
    stem = name or "dataset"
    say(f"Uploading {len(train)} training examples...")
    training_file = ft.upload_examples(client, train, f"{stem}-train")
    validation_file = None
    if validation:
        say(f"Uploading {len(validation)} validation examples...")
        validation_file = ft.upload_examples(client, validation, f"{stem}-validation")
    job = ft.create_job(client, model=model, training_file=training_file, validation_file=validation_file,
                        suffix=suffix, seed=seed, n_epochs=n_epochs, batch_size=batch_size,
                        learning_rate_multiplier=learning_rate_multiplier, metadata=metadata)
    say(f"Created job {job.id} ({job.status}).")
    return Started(job, pre, training_file, validation_file)
