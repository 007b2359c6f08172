"""What one generation run is asked to do (the CLI and the Generate tab both fill this in)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.generate import prompts
from pipeline.generate.teacher import RetryPolicy
from pipeline.generate.templates import Template


@dataclass
class GenerationConfig:
    template: Template
    n: int
    out: Path
    model: str
    variables: dict[str, str] = field(default_factory=dict)
    concurrency: int = 8
    temperature: float = 0.9
    budget_usd: float | None = None
    seed: int = 0
    #: Ask a checker to solve each verifiable example again; keep it only when final answers agree.
    check: bool = False
    check_model: str | None = None
    #: Existing examples a `source` template (paraphrase) rewrites.
    sources: list[dict] | None = None
    #: Examples the run must not duplicate and should not repeat (e.g. the visitor's draft).
    avoid: list[dict] | None = None
    sample_size: int = prompts.SAMPLE_SIZE
    near_duplicate_threshold: float = 92.0
    max_tokens: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: Parse failures + duplicates + check drops + failed calls after which the run gives up.
    max_failures: int | None = None
    endpoint: str = ""
    #: Send each request `seed + its number` as the API's sampling seed, so the same run samples the
    #: same words again (the endpoint must honour `seed`: the local backend does). Off by default: a
    #: provider may reject or ignore the field.
    sampling_seed: bool = False

    def per_request(self, variables: dict[str, str]) -> int:
        if not self.template.items:
            return 1
        try:
            return max(1, int(variables.get("ways", "1")))
        except ValueError:
            return 1
