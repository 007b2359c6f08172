"""A second phase of a batch: follow-up requests made from the first phase's results (answer checks in
checks.py, the judge in judging.py), sent as a new part of the same record.

The part has its own request file in the batch folder (`Part.file`), goes to the same endpoint, and
is followed, downloaded and collected with the rest of the record: `collect` sends the phase on its
first call after the answers are in and reads the phase's results on the call after that one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pipeline import atomic
from pipeline.batch.provider import submit
from pipeline.batch.records import BatchRecord, Part, save_batch


def sent(record: BatchRecord, file: str) -> bool:
    """Whether the phase whose request file is `file` was added to the record (submitted or not)."""
    return any(p.file == file for p in record.parts)


def add_phase(record: BatchRecord, client: Any, file: str, model: str, lines: Iterable[str]) -> int:
    """Write `lines` (request lines) to `file` in the batch folder, record them as a new part for
    `model`, and submit it; returns how many requests it holds.

    The part is saved on the record before it is submitted, so a collect that dies in between finds
    a "built" part and submits it the next time. With no lines there is nothing to send: the part is
    marked completed and downloaded without a provider batch, and the record stays collectable.
    """
    count = 0

    def counted() -> Iterator[str]:
        nonlocal count
        for line in lines:
            count += 1
            yield line
    atomic.write_lines(record.folder / file, counted())
    record.parts.append(Part(model=model, first_line=0, lines=count, file=file))
    record.requests += count
    save_batch(record)
    if count:
        submit(record, client)
    else:
        record.parts[-1].status, record.parts[-1].downloaded = "completed", True
        save_batch(record)
    return count
