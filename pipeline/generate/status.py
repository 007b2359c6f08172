"""What a generation run reports: live through the progress callback, and at the end as its result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: The keys `python -m pipeline generate --json` prints (stable: the issue names them).
JSON_KEYS = ("requested", "written", "new", "failed_parse", "duplicates_dropped", "check_dropped",
             "failed_calls", "retries", "rate_limited", "cost_usd", "cost_known", "input_tokens",
             "output_tokens", "state", "message", "out", "failures_out", "structured_output",
             "elapsed_s")


@dataclass
class RunStatus:
    requested: int
    out: str
    failures_out: str = ""
    #: Examples in the output file, including those from an earlier run that this one resumed.
    written: int = 0
    #: Examples this run added.
    new: int = 0
    failed_parse: int = 0
    duplicates_dropped: int = 0
    #: Reasoning examples whose final answer the checker did not reproduce.
    check_dropped: int = 0
    #: Calls that still failed after all their retries (the run made others in their place).
    failed_calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True
    input_tokens: int = 0
    output_tokens: int = 0
    in_flight: int = 0
    concurrency_limit: int = 0
    structured_output: str = "json_schema"
    #: running | done | cancelled | budget | failed
    state: str = "running"
    message: str = ""
    elapsed_s: float = 0.0
    #: Examples / failure records this run produced (for the UI; not printed by the CLI).
    new_examples: list[dict] = field(default_factory=list, repr=False)
    new_failures: list[dict] = field(default_factory=list, repr=False)

    @property
    def complete(self) -> bool:
        return self.written >= self.requested

    def snapshot(self) -> RunStatus:
        """A copy safe to hand to another thread (lists copied, so later appends do not show up)."""
        copy = RunStatus(**{k: v for k, v in asdict(self).items() if k not in ("new_examples", "new_failures")})
        copy.new_examples = list(self.new_examples)
        copy.new_failures = list(self.new_failures)
        return copy

    def to_json(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in JSON_KEYS}
        data["cost_usd"] = round(self.cost_usd, 6)
        return data

    def summary(self) -> str:
        parts = [f"{self.written}/{self.requested} written ({self.new} new)",
                 f"{self.failed_parse} failed to parse", f"{self.duplicates_dropped} duplicates dropped"]
        if self.check_dropped:
            parts.append(f"{self.check_dropped} dropped by the answer check")
        if self.failed_calls:
            parts.append(f"{self.failed_calls} calls failed")
        parts.append(f"{self.retries} retries")
        parts.append(f"${self.cost_usd:.4f}" if self.cost_known else "cost unknown")
        return ", ".join(parts)

    @staticmethod
    def failures_path_for(out: Path) -> str:
        return str(out.with_name(f"{out.stem}.failed.jsonl"))
