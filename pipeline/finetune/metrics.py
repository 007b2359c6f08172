"""Training metrics: from `metrics` events (live) or the result CSV (after the job) to one table.

Rows are plain dicts `{step, train_loss, valid_loss, accuracy, valid_accuracy}` (None where a step has
no figure: validation is measured only every few steps), sorted by step, one per step.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

COLUMNS = ("step", "train_loss", "valid_loss", "accuracy", "valid_accuracy")
#: Where each column comes from, in the events' `data` and in the result CSV (first found wins).
_SOURCES = {
    "train_loss": ("train_loss",),
    "valid_loss": ("valid_loss", "full_valid_loss"),
    "accuracy": ("train_mean_token_accuracy", "train_accuracy"),
    "valid_accuracy": ("valid_mean_token_accuracy", "full_valid_mean_token_accuracy", "valid_accuracy"),
}


def _number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _row(data: dict[str, Any]) -> dict[str, Any] | None:
    step = _number(data.get("step"))
    if step is None:
        return None
    row: dict[str, Any] = {"step": int(step)}
    for column, keys in _SOURCES.items():
        row[column] = next((v for k in keys if (v := _number(data.get(k))) is not None), None)
    return row


def _merge(rows: Iterable[dict[str, Any] | None]) -> list[dict[str, Any]]:
    by_step: dict[int, dict[str, Any]] = {}
    for row in rows:
        if row is None:
            continue
        old = by_step.setdefault(row["step"], dict.fromkeys(COLUMNS) | {"step": row["step"]})
        old.update({k: v for k, v in row.items() if v is not None})
    return [by_step[s] for s in sorted(by_step)]


def _event_data(event: Any) -> dict[str, Any] | None:
    get = event.get if isinstance(event, dict) else lambda k, d=None: getattr(event, k, d)
    if get("type") != "metrics":
        return None
    data = get("data")
    return data if isinstance(data, dict) else None


def rows_from_events(events: Iterable[Any]) -> list[dict[str, Any]]:
    """Metrics rows from fine-tuning events (SDK objects or dicts), in step order."""
    return _merge(_row(d) for e in events if (d := _event_data(e)) is not None)


def total_steps_from_events(events: Iterable[Any]) -> int | None:
    totals = [int(t) for e in events if (d := _event_data(e)) and (t := _number(d.get("total_steps")))]
    return max(totals) if totals else None


def rows_from_csv(text: str) -> list[dict[str, Any]]:
    """Metrics rows from a job's result file (`step,train_loss,train_accuracy,valid_loss,...`)."""
    return _merge(_row(record) for record in csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def smooth(values: list[float | None], weight: float = 0.6) -> list[float | None]:
    """Exponential moving average (TensorBoard's), skipping gaps; bias-corrected at the start."""
    out: list[float | None] = []
    last, count = 0.0, 0
    for value in values:
        if value is None:
            out.append(None)
            continue
        count += 1
        last = last * weight + (1 - weight) * value
        out.append(last / (1 - weight**count))
    return out


def metrics_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The table as shown: one row per step."""
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype({"step": "int64", **{c: "float64" for c in COLUMNS[1:]}})


def loss_frame(rows: list[dict[str, Any]], smoothing: bool = False, *,
               series: tuple[str, ...] = ()) -> pd.DataFrame:
    """Long-form `step, loss, series` (train / validation) for a line chart.

    Every name in `series` gets at least one row (a NaN loss, which a chart does not draw) so the
    chart knows all its series from the first points on.
    """
    records = []
    for column, name in (("train_loss", "train"), ("valid_loss", "validation")):
        steps = [r["step"] for r in rows if r.get(column) is not None]
        values = [r[column] for r in rows if r.get(column) is not None]
        if smoothing:
            values = smooth(values)
        records += [{"step": s, "loss": v, "series": name} for s, v in zip(steps, values, strict=True)]
    if records:
        present = {r["series"] for r in records}
        first = min(r["step"] for r in records)
        records += [{"step": first, "loss": float("nan"), "series": wanted} for wanted in series if wanted not in present]
    # Explicit dtypes: an empty first frame must not make a chart treat loss as categories.
    frame = pd.DataFrame(records, columns=["step", "loss", "series"])
    return frame.astype({"step": "int64", "loss": "float64", "series": "str"})
