"""Exact and near-duplicate detection on the user turns of examples (rapidfuzz does the distance).

Two examples whose user turns match after normalising case, spacing and punctuation are exact
duplicates; two whose user turns score at least `threshold` with rapidfuzz's token_sort_ratio (word
order ignored) are near duplicates. Only the user side is compared: the point is
not to ask the student the same question twice, whatever the answer says.
"""

from __future__ import annotations

from rapidfuzz import fuzz, process

# One rule for "the same question" across the app: generation's dedupe, the group-aware split and the
# benchmark leakage check (pipeline.dataset.groups).
from pipeline.dataset.groups import NEAR_DUPLICATE_THRESHOLD, user_text
from pipeline.dataset.groups import normal_text as _normal

__all__ = ["Deduper", "user_text"]


class Deduper:
    def __init__(self, threshold: float = NEAR_DUPLICATE_THRESHOLD) -> None:
        self.threshold = threshold
        self._exact: set[str] = set()
        self._texts: list[str] = []
        # The same keys with their words sorted: token_sort_ratio(a, b) is ratio(sorted a, sorted b), so
        # sorting each kept text once (not on every comparison) gives the same scores ~4x faster, which
        # matters when a 10,000-request batch checks each reply against all kept before it.
        self._sorted: list[str] = []

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, example: dict) -> None:
        key = _normal(user_text(example))
        self._exact.add(key)
        self._texts.append(key)
        self._sorted.append(_word_sorted(key))

    def duplicate_reason(self, example: dict) -> str | None:
        """Why this example duplicates one already kept, or None when it is new."""
        key = _normal(user_text(example))
        if key in self._exact:
            return "exact duplicate of an earlier example"
        if self.threshold < 100 and self._texts:
            match = process.extractOne(_word_sorted(key), self._sorted, scorer=fuzz.ratio,
                                       score_cutoff=self.threshold, processor=None)
            if match is not None:
                return f"near duplicate ({match[1]:.0f}% similar) of: {self._texts[match[2]][:120]}"
        return None


def _word_sorted(key: str) -> str:
    """A normalised key (single spaces) with its words in order, as token_sort_ratio compares them."""
    return " ".join(sorted(key.split()))
