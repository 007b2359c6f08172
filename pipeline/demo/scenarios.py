"""Demo scenarios are data (data/demos.json); this module reads them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.errors import InputError
from pipeline.models import DATA_DIR, openai_equivalent

__all__ = ["Scenario", "list_scenarios", "load_scenario", "openai_equivalent"]


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    pitch: str
    sample: Path
    benchmark: Path
    suffix: str
    steps: tuple[str, ...]
    augment: dict[str, Any] = field(default_factory=dict)
    facts: Path | None = None
    #: Examples held out of the sample as the benchmark by the "holdout" step (whole groups).
    holdout: int = 0
    #: Why a scenario keeps its shipped benchmark instead (said with the scoreboard).
    benchmark_note: str = ""


@cache
def _table() -> dict[str, Any]:
    return json.loads((DATA_DIR / "demos.json").read_text(encoding="utf-8"))


def list_scenarios() -> list[Scenario]:
    return [load_scenario(name) for name in _table()["scenarios"]]


def load_scenario(name: str) -> Scenario:
    raw = _table()["scenarios"].get(name)
    if raw is None:
        raise InputError(f"There is no demo scenario '{name}'. Pick one of: {', '.join(_table()['scenarios'])}.")
    return Scenario(
        name=name, title=raw["title"], pitch=raw["pitch"], sample=DATA_DIR / raw["sample"],
        benchmark=DATA_DIR / raw["benchmark"], suffix=raw["suffix"], steps=tuple(raw["steps"]),
        augment=raw.get("augment", {}), facts=DATA_DIR / raw["facts"] if raw.get("facts") else None,
        holdout=int(raw.get("holdout", 0)), benchmark_note=raw.get("benchmark_note", ""),
    )
