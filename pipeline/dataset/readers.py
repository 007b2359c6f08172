"""read_dataset(path): any supported file -> chat examples + problems + where each example came from.

Formats: OpenAI chat JSONL (extra keys such as weight, name, tool_calls, tools, functions kept as
they are), legacy prompt/completion JSONL (converted to chat), CSV/TSV, Parquet, and a `datasets`
Dataset (object or `save_to_disk` folder) with a `messages` column. Reading never raises for bad
content: it reports problems. Only a missing path raises UnreadableFileError.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.dataset.jsonl import Parsed, Unparsed, decode_lines, parse_json_lines
from pipeline.dataset.problems import Problem, problem
from pipeline.dataset.tables import Columns, rows_to_examples
from pipeline.errors import UnreadableFileError

JSON_SUFFIXES = {".jsonl", ".json", ".ndjson", ".jsonlines"}
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
SUPPORTED = sorted(JSON_SUFFIXES | set(CSV_SUFFIXES) | PARQUET_SUFFIXES | {".txt"})


@dataclass
class ReadResult:
    #: Parsed values, one per readable line/row (normally chat example dicts; validation flags the rest).
    examples: list[Any] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: 1-based source line (JSONL) or row (tables) of each example, parallel to `examples`.
    line_numbers: list[int] = field(default_factory=list)
    #: Lines that could not be read as examples, with their raw text, so nothing is lost silently.
    unparsed: list[Unparsed] = field(default_factory=list)
    format: str = "jsonl"
    #: False when nothing could be read at all (binary, compressed, no usable columns): CLI exit 2.
    readable: bool = True

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def read_dataset(path: str | Path | Any, *, system_prompt: str | None = None,
                 columns: Columns = None) -> ReadResult:
    """Read a dataset file (or a `datasets.Dataset`). `system_prompt` is added to converted rows that
    have none (prompt/completion, CSV pairs); `columns` names the user/assistant[/system] columns."""
    if hasattr(path, "column_names") and hasattr(path, "to_list"):
        return from_hf_dataset(path, system_prompt=system_prompt, columns=columns)
    path = Path(path)
    if path.is_dir():
        return _read_saved_dataset(path, system_prompt, columns)
    if not path.is_file():
        raise UnreadableFileError(f"No such file: {path}. Check the path.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFileError(f"Cannot read {path}: {exc.strerror}. Check its permissions.") from exc
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES or data.startswith(b"PAR1"):
        return _read_parquet(path, system_prompt, columns)
    if suffix in CSV_SUFFIXES or (suffix not in JSON_SUFFIXES and data.lstrip()[:1] not in (b"{", b"[", b"")):
        return read_csv_bytes(data, CSV_SUFFIXES.get(suffix), system_prompt=system_prompt, columns=columns)
    return read_jsonl_bytes(data, system_prompt=system_prompt)


def read_jsonl_bytes(data: bytes, *, system_prompt: str | None = None) -> ReadResult:
    out = Parsed()
    lines = decode_lines(data, out)
    if lines is not None:
        parse_json_lines(lines, out)
    result = ReadResult(out.values, out.problems, out.lines, out.unparsed, "jsonl", out.readable)
    _convert_prompt_completion(result, system_prompt)
    return result


def _convert_prompt_completion(result: ReadResult, system_prompt: str | None) -> None:
    """Legacy {"prompt", "completion"} lines become chat examples (TRL's conversational form too)."""
    converted = []
    for i, ex in enumerate(result.examples):
        chat = convert_prompt_completion(ex, system_prompt)
        if chat is not None:
            result.examples[i] = chat
            converted.append(result.line_numbers[i])
    if converted:
        result.problems.append(converted_problem(converted))


def convert_prompt_completion(ex: Any, system_prompt: str | None) -> dict | None:
    """The chat form of one legacy prompt/completion value, or None when it is not one."""
    if not (isinstance(ex, dict) and "prompt" in ex and "completion" in ex and "messages" not in ex):
        return None
    prompt, completion = ex["prompt"], ex["completion"]
    if isinstance(prompt, list) and isinstance(completion, list):
        messages = prompt + completion
    else:
        messages = [{"role": "user", "content": _strip(prompt)},
                    {"role": "assistant", "content": _strip(completion)}]
    if system_prompt and not any(isinstance(m, dict) and m.get("role") == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system_prompt})
    rest = {k: v for k, v in ex.items() if k not in ("prompt", "completion")}
    return {"messages": messages, **rest}


def converted_problem(lines: list[int]) -> Problem:
    msg = (f"{len(lines)} line(s) were in the legacy prompt/completion format and were converted to chat "
           "messages (user = prompt, assistant = completion). Check them, then download as JSONL.")
    return problem("converted_prompt_completion", msg, line=lines[0])


def _strip(value: Any) -> Any:
    # Legacy completions carried separators (prompt ends in "\n\n###\n\n", completion starts with a space).
    return value.strip() if isinstance(value, str) else value


def read_csv_bytes(data: bytes, delimiter: str | None = None, *, system_prompt: str | None = None,
                   columns: Columns = None) -> ReadResult:
    out = Parsed()
    lines = decode_lines(data, out)
    result = ReadResult(format="csv")
    if lines is None or all(not ln.strip() for ln in lines):
        if lines is not None:
            out.problems.append(problem("empty_file", "The file is empty. Add a header row and rows.", line=1))
        result.problems, result.readable = out.problems, out.readable
        return result
    text = "\n".join(lines)
    if delimiter is None:
        head = lines[0]
        delimiter = "\t" if head.count("\t") > head.count(",") else ","
    result.format = "tsv" if delimiter == "\t" else "csv"
    _raise_csv_field_limit()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        headers = next(reader)
        rows, numbers = [], []
        start = reader.line_num + 1
        for cells in reader:
            if not any(c.strip() for c in cells):
                out.problems.append(problem("blank_line", f"Line {start} is an empty row and was skipped.",
                                            line=start))
            else:
                rows.append(dict(zip(headers, cells, strict=False)))
                numbers.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        out.problems.append(problem("unreadable_table", f"The table breaks at line {reader.line_num}: {exc}. "
                                    "Check quoting (a quote opened and never closed?).", line=reader.line_num))
        out.readable = False
        result.problems = out.problems
        result.readable = False
        return result
    rows_to_examples(rows, headers, numbers, out, columns=columns, system_prompt=system_prompt)
    result.examples, result.line_numbers, result.unparsed = out.values, out.lines, out.unparsed
    result.problems, result.readable = out.problems, out.readable
    return result


def _raise_csv_field_limit() -> None:
    limit = sys.maxsize
    while True:  # the C long may be 32-bit: halve until accepted
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 2


def _read_parquet(path: Path, system_prompt: str | None, columns: Columns) -> ReadResult:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        result = ReadResult(format="parquet", readable=False)
        result.problems.append(problem("unreadable_table", f"Could not read the Parquet file: {exc}. "
                                       "Check that it is a complete .parquet file.", line=1))
        return result
    return _from_rows(table.to_pylist(), table.column_names, "parquet", system_prompt, columns)


def _read_saved_dataset(path: Path, system_prompt: str | None, columns: Columns) -> ReadResult:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise UnreadableFileError(f"{path} is a folder but not a saved `datasets` dataset ({exc}).") from exc
    if isinstance(ds, datasets.DatasetDict):
        ds = ds["train"] if "train" in ds else ds[next(iter(ds))]
    return from_hf_dataset(ds, system_prompt=system_prompt, columns=columns)


def from_hf_dataset(ds: Any, *, system_prompt: str | None = None, columns: Columns = None) -> ReadResult:
    """A `datasets.Dataset` (with a `messages` column, or text columns) -> examples; rows count from 1."""
    return _from_rows(ds.to_list(), list(ds.column_names), "dataset", system_prompt, columns)


def _from_rows(rows: list[dict], headers: list[str], fmt: str, system_prompt: str | None,
               columns: Columns) -> ReadResult:
    out = Parsed()
    if not rows:
        out.problems.append(problem("empty_file", "The table has no rows. Add examples.", line=1))
    else:
        rows_to_examples(rows, headers, list(range(1, len(rows) + 1)), out, columns=columns,
                         system_prompt=system_prompt, keep_other_columns=True)
    return ReadResult(out.values, out.problems, out.lines, out.unparsed, fmt, out.readable)
