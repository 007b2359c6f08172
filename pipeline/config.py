"""Every `DISTILL_*` environment variable the app reads: its type, default and meaning, in one place.

Values are read when asked for (`config.MAX_PULL_ROWS.get()`), never kept from import time, so an
operator's change is seen by the next process and a test sets one with `monkeypatch.setenv`. The
README's configuration table is generated from `SETTINGS` (`python -m pipeline.config`) and a test
checks it still matches. A value that cannot be read stops with a message naming the variable,
instead of being guessed at. Standard variables of other tools (OPENAI_API_KEY, HF_TOKEN, SPACE_ID,
GRADIO_SERVER_PORT) keep their own names and are read where they are used.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from pipeline.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Setting(Generic[T]):
    name: str
    parse: Callable[[str], T]
    default: T
    #: How the default reads in the README (the value itself may be "computed" or None).
    default_text: str
    doc: str
    #: What a valid value looks like, for the message when one is not.
    expects: str = "a value"

    def get(self) -> T:
        raw = os.environ.get(self.name, "").strip()
        if not raw:
            return self.default
        try:
            return self.parse(raw)
        except ValueError:
            # The raw value is shown: none of these settings is a secret (the API key never fails to parse).
            raise ConfigError(f"The environment variable {self.name}={raw!r} should be {self.expects}. "
                              f"Fix it or unset it (default: {self.default_text}).") from None

    def is_set(self) -> bool:
        return bool(os.environ.get(self.name, "").strip())


def _flag(raw: str) -> bool:
    word = raw.lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _count(raw: str) -> int | None:
    """A whole number >= 0; 0 means "no limit" / "the library's default"."""
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value or None


def _positive(kind: Callable[[str], T], zero_ok: bool = False) -> Callable[[str], T]:
    def parse(raw: str) -> T:
        value = kind(raw)
        if value < 0 or (value == 0 and not zero_ok):  # type: ignore[operator]
            raise ValueError(raw)
        return value
    return parse


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(raw)
        return raw.lower()
    return parse


def _names(raw: str) -> frozenset[str]:
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


WHOLE = "a whole number (0 = no limit)"

HOME: Setting[Path | None] = Setting(
    "DISTILL_HOME", Path, None, "`~/.cache/distill-studio`; `/data/distill-studio` on a Space with persistent storage",
    "Workspace for drafts, runs, jobs, adapters, templates.", "a folder path")
MODEL_DIR: Setting[Path | None] = Setting(
    "DISTILL_MODEL_DIR", Path, None, "`models/` inside the workspace",
    "Where the converted SmolLM2 copy is kept.", "a folder path")
SHARED_KEY_VARS: Setting[frozenset[str]] = Setting(
    "DISTILL_SHARED_KEY_VARS", _names, frozenset(), "none",
    "On a Space: comma list of environment variables a visitor's custom endpoint may take its key from.",
    "a comma-separated list of variable names")
MAX_TRAIN_EXAMPLES: Setting[int | None] = Setting(
    "DISTILL_MAX_TRAIN_EXAMPLES", _count, None, "no limit",
    "Most examples one local fine-tuning job may train on (for a shared Space).", WHOLE)
MAX_EPOCHS: Setting[int | None] = Setting(
    "DISTILL_MAX_EPOCHS", _count, None, "no limit; auto picks 2-4",
    "Most epochs one local fine-tuning job may run (for a shared Space; jobs queue one at a time).", WHOLE)
MAX_UPLOAD_MB: Setting[float] = Setting(
    "DISTILL_MAX_UPLOAD_MB", _positive(float), 64.0, "64",
    "Largest request body the local backend accepts, in MB.", "a number of MB above 0")
MAX_PULL_MB: Setting[float] = Setting(
    "DISTILL_MAX_PULL_MB", _positive(float), 200.0, "200",
    "Largest Hub dataset file the Hub tab loads, in MB.", "a number of MB above 0")
MAX_PULL_ROWS: Setting[int] = Setting(
    "DISTILL_MAX_PULL_ROWS", _positive(int), 20000, "20,000",
    "Most rows the Hub tab loads from one split.", "a whole number above 0")
FINETUNE_CONFIRM_USD: Setting[float] = Setting(
    "DISTILL_FINETUNE_CONFIRM_USD", _positive(float, zero_ok=True), 5.0, "$5",
    "Estimated fine-tune cost above which a confirmation is asked (Settings can change it per visitor).",
    "an amount in US dollars (0 = always ask)")
MULTI_USER: Setting[bool] = Setting(
    "DISTILL_MULTI_USER", _flag, False, "0 (1 on a Space)",
    "1 isolates visitors from each other (jobs, files, models) off Spaces too; also on when bound beyond loopback or shared by link.",
    "1 or 0")
SECRET_KEY: Setting[str | None] = Setting(
    "DISTILL_SECRET_KEY", str, None, "random, kept in the workspace's `.server_secret`",
    "Server key that signs visitor ids and seals what the browser keeps (keep it secret).")
LOCAL_API_KEY: Setting[str | None] = Setting(
    "DISTILL_LOCAL_API_KEY", str, None, "random, printed at start",
    "Key clients must send to `python -m pipeline serve`.")
LOCAL_TINY: Setting[bool] = Setting(
    "DISTILL_LOCAL_TINY", _flag, False, "0",
    "1 serves a tiny random model of the same family instead of SmolLM2 (tests).", "1 or 0")
PRECISION: Setting[str] = Setting(
    "DISTILL_PRECISION", _one_of("auto", "fp32", "bf16"), "auto",
    "auto: bf16 where the CPU has it natively (AVX512-BF16/AMX): decoding's activations, and fine-tuning's matmuls "
    "of the frozen weights (the rest of the fine-tune stays fp32); fp32 elsewhere",
    "Local backend's training/decoding precision: fp32 or bf16 forces both (see `docs/BENCHMARKS.md`).",
    "auto, fp32 or bf16")
DECODE_INT8: Setting[bool] = Setting(
    "DISTILL_DECODE_INT8", _flag, True, "1",
    "Local backend decodes with int8 weights (0 keeps bf16; see `docs/BENCHMARKS.md`).", "1 or 0")
DECODE_INT4: Setting[bool] = Setting(
    "DISTILL_DECODE_INT4", _flag, True, "1",
    "Local backend decodes the base model's layers with int4 weights (~1.5x faster than int8; 0 keeps int8; see `docs/bench/backend.md`).", "1 or 0")
NATIVE_STEP: Setting[bool] = Setting(
    "DISTILL_NATIVE_STEP", _flag, True, "1",
    "1 runs a decode step's small ops (norms, attention, SiLU) in C, built once with the machine's C compiler "
    "where it has one; 0 keeps them in torch (see `docs/bench/backend.md`).", "1 or 0")
INT4_KERNEL: Setting[str] = Setting(
    "DISTILL_INT4_KERNEL", _one_of("auto", "c", "torch"), "auto",
    "auto: the faster of the two, timed once while the model loads",
    "Which int4 kernel a C decode step runs: c (ours, int16 activations: faster where torch's kernel lacks "
    "AVX512) or torch (see `docs/bench/backend.md`).", "auto, c or torch")
def _threads(raw: str) -> int | str | None:
    return "auto" if raw.lower() == "auto" else _count(raw)


DECODE_THREADS: Setting[int | str | None] = Setting(
    "DISTILL_DECODE_THREADS", _threads, "auto", "auto",
    "Intra-op threads for local decoding: auto times steps with 1 and 2 threads and keeps the faster "
    "(re-checked as the load changes); a number fixes it (0 = torch's default; see `docs/bench/backend.md`).",
    "auto or a whole number")
TRAIN_THREADS: Setting[int | str | None] = Setting(
    "DISTILL_TRAIN_THREADS", _threads, "auto", "auto",
    "Threads for local fine-tuning (N > 1: each step's rows split over N threads): auto times steps with 2 "
    "and 1 threads and keeps the faster (one can win beside a chat decoding on the same cores); a number "
    "fixes it (0 = torch's own intra-op threads on whole batches; see `docs/bench/recipe.md`).",
    "auto or a whole number")
TRAIN_STANDBY: Setting[bool] = Setting(
    "DISTILL_TRAIN_STANDBY", _flag, True, "1",
    "1 keeps one training process waiting with its libraries imported (at idle priority, ~430 MB), so a "
    "fine-tune starts ~6 s sooner; 0 starts a fresh one per job (Linux only; see `docs/bench/demo.md`).", "1 or 0")
WARM_START: Setting[bool] = Setting(
    "DISTILL_WARM_START", _flag, True, "1",
    "1 loads the local model in the background once the app's page is up (0: on first use).", "1 or 0")
DEMO_MAX_TOKENS: Setting[int] = Setting(
    "DISTILL_DEMO_MAX_TOKENS", _positive(int), 120, "120",
    "Longest answer of each model in the demo's side-by-side comparison.", "a whole number above 0")

SETTINGS: tuple[Setting, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Setting))


def markdown_rows() -> list[str]:
    """The README's configuration rows for these settings, in declaration order."""
    return [f"| `{s.name}` | {s.doc} Default: {s.default_text}. |" for s in SETTINGS]


if __name__ == "__main__":
    print("\n".join(markdown_rows()))
