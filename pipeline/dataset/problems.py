"""Problems found in a dataset: where (1-based line), what (a stable code), how to fix it, how bad.

Codes are stable: the CLI's JSON, the UI and tests key on them. `line` is the line of the file the
example came from (or the row of a CSV/Parquet table); it is None only for dataset-wide problems
such as "fewer than 10 examples".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]

#: Every code, with its severity. Errors stop a fine-tune (OpenAI would reject the file or the example
#: is unusable); warnings are worth a look but the data can still be used.
SEVERITY: dict[str, Severity] = {
    # reading the file
    "empty_file": "error",
    "binary_file": "error",
    "compressed_file": "error",
    "invalid_utf8": "error",
    "utf8_bom": "warning",
    "utf16_file": "warning",
    "blank_line": "warning",
    "invalid_json": "error",
    "line_too_long": "error",
    "too_deeply_nested": "error",
    "number_too_long": "error",
    "unusable_text": "error",
    "unreadable_file": "error",
    "internal_error": "error",
    "json_array": "warning",
    "multiline_json": "warning",
    "converted_prompt_completion": "warning",
    "missing_columns": "error",
    "unreadable_table": "error",
    "bad_messages_cell": "error",
    # the data-prep notebook's checks
    "not_a_dict": "error",
    "missing_messages": "error",
    "messages_not_a_list": "error",
    "message_not_a_dict": "error",
    "message_missing_key": "error",
    "message_unrecognized_key": "error",
    "unrecognized_role": "error",
    "missing_content": "error",
    "missing_assistant_message": "error",
    # ours
    "content_not_string": "error",
    "blank_content": "error",
    "invalid_weight": "error",
    "too_long": "warning",
    "too_few_examples": "error",
    "few_examples": "warning",
    "missing_system_message": "warning",
    "missing_user_message": "warning",
    "duplicate": "warning",
    "unrecognized_example_key": "warning",
    "all_weights_zero": "warning",
    # task formats (pipeline.dataset.formats): tool calls, structured answers, labels
    "invalid_tool_definition": "error",
    "invalid_tool_call": "error",
    "undefined_tool": "error",
    "tool_arguments_not_json": "error",
    "tool_arguments_mismatch": "error",
    "unanswered_tool_call": "error",
    "tool_message_without_call": "error",
    "invalid_schema": "error",
    "answer_not_json": "error",
    "answer_schema_mismatch": "error",
    "label_imbalance": "warning",
}


@dataclass(frozen=True)
class Problem:
    line: int | None
    code: str
    message: str
    severity: Severity
    #: Index of the example in the list it was found in (None for file- or dataset-wide problems).
    index: int | None = None

    def as_dict(self) -> dict:
        """The public shape: {line, code, message, severity}."""
        # Built by hand: dataclasses.asdict deep-copies, and a large draft has thousands of problems.
        return {"line": self.line, "code": self.code, "message": self.message, "severity": self.severity}


def problem(code: str, message: str, line: int | None = None, index: int | None = None) -> Problem:
    return Problem(line=line, code=code, message=message, severity=SEVERITY[code], index=index)


def where(line: int | None) -> str:
    return f"Line {line}" if line is not None else "The dataset"
