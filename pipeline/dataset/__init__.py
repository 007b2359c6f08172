"""Chat fine-tuning datasets: read, validate (tokens, epochs, cost), edit, split, dedupe, write.

Public API (other parts of the app call these names):
    read_dataset(path, *, system_prompt=None, columns=None) -> ReadResult
    validate_examples(examples, model=..., *, n_epochs=None, line_numbers=None) -> ValidationReport
    validate_file(path, model=..., n_epochs=None) -> ValidationReport
    write_jsonl / write_csv / write_parquet(examples, path) -> Path
    split_examples(examples, validation_fraction, seed) -> (train, validation), whole groups per side
    split_by_groups(examples, fraction=|count=, seed) -> Split (with how many groups went each way)
    dedupe_examples(examples) -> (examples, n_removed)
"""

from pipeline.dataset.jsonl import Unparsed
from pipeline.dataset.ops import Split, dedupe_examples, set_system_prompt, split_by_groups, split_examples
from pipeline.dataset.problems import SEVERITY, Problem
from pipeline.dataset.readers import SUPPORTED, ReadResult, from_hf_dataset, read_dataset
from pipeline.dataset.streaming import validate_file
from pipeline.dataset.validate import DEFAULT_MODEL, ValidationReport, validate_examples
from pipeline.dataset.writers import simple_parts, to_jsonl, write_csv, write_jsonl, write_parquet

__all__ = [
    "DEFAULT_MODEL", "SEVERITY", "SUPPORTED", "Problem", "ReadResult", "Unparsed", "ValidationReport",
    "dedupe_examples", "from_hf_dataset", "read_dataset", "set_system_prompt", "simple_parts", "split_by_groups",
    "split_examples", "Split",
    "to_jsonl", "validate_examples", "validate_file", "write_csv", "write_jsonl", "write_parquet",
]
