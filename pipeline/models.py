"""Facts about model families (encoding, training context, prices), read from files in data/.

Lookups go by the longest family key that starts the model id, so `gpt-4o-mini-2024-07-18` finds
`gpt-4o-mini` and not `gpt-4o`. A fine-tuned id (`ft:BASE:org:suffix:id`) is looked up by its base.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class ModelInfo:
    family: str | None
    encoding: str
    training_context: int
    fine_tunable: tuple[str, ...]
    #: True when the counting encoding is not the model's own (local and unknown models).
    approximate: bool


@dataclass(frozen=True)
class Prices:
    """USD per 1M tokens; None where the table has no figure."""

    input: float | None = None
    output: float | None = None
    training: float | None = None
    ft_input: float | None = None
    ft_output: float | None = None
    #: Through the Batch API (half the interactive price where OpenAI lists one).
    batch_input: float | None = None
    batch_output: float | None = None
    batch_ft_input: float | None = None
    batch_ft_output: float | None = None


@cache
def _load(name: str) -> dict:
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


def base_of(model: str) -> str:
    """`ft:gpt-4o-mini-2024-07-18:org:suffix:id` -> `gpt-4o-mini-2024-07-18`; other ids unchanged."""
    if model.startswith("ft:"):
        return model.split(":")[1]
    return model


def is_fine_tuned(model: str) -> bool:
    return model.startswith("ft:")


def _family(model: str, keys: list[str]) -> str | None:
    name = base_of(model).lower()
    # Local ids look like "HuggingFaceTB/SmolLM2-135M-Instruct": match on the last path part too.
    candidates = [name, name.rsplit("/", 1)[-1]]
    matches = [k for k in keys for c in candidates if c.startswith(k)]
    return max(matches, key=len) if matches else None


def model_info(model: str) -> ModelInfo:
    table = _load("models.json")
    family = _family(model, list(table["families"]))
    row = {**table["default"], **(table["families"].get(family, {}) if family else {})}
    if family and "approximate" not in table["families"][family]:
        row["approximate"] = False
    return ModelInfo(
        family=family,
        encoding=row["encoding"],
        training_context=int(row.get("training_context", table["default"]["training_context"])),
        fine_tunable=tuple(row.get("fine_tunable", ())),
        approximate=bool(row.get("approximate", False)),
    )


def prices(model: str) -> Prices | None:
    """The price row for a model, or None when the table does not know it."""
    table = _load("pricing.json")
    family = _family(model, list(table["models"]))
    return Prices(**table["models"][family]) if family else None


def batch_pricing_source() -> str:
    table = _load("pricing.json")["batch"]
    return f"{table['source']} ({table['date']})"


def openai_equivalent(role: str) -> str:
    """The OpenAI model whose prices estimate a local model's cost: "teacher" or "student"."""
    return _load("pricing.json")["local_equivalent"][role]


def is_free(model: str) -> bool:
    """A model the price table lists at zero (the local backend's): real cost 0, shown as an equivalent."""
    row = prices(model)
    return row is not None and not row.input and not row.output


def pricing_source() -> str:
    table = _load("pricing.json")
    return f"{table['source']} ({table['date']})"


def openai_fine_tunable_models() -> list[str]:
    """OpenAI's fine-tunable snapshots, as kept in data/models.json."""
    return [m for fam in _load("models.json")["families"].values() for m in fam.get("fine_tunable", [])]
