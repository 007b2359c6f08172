"""validate_file: JSON Lines without holding the examples: read, check and count a chunk of lines
at a time, keeping only what the report needs.

The whole-file path (readers.read_dataset + validate_examples) held every parsed example at once:
~700 MB peak for an 18 MB, 50,000-line file. Here each chunk of CHUNK examples is checked, hashed
(duplicates by a 16-byte digest of `dedupe_key`), counted (tokens, `stats.example_facts`) and then
dropped; the report is the same as the whole-file path's, problem for problem. Files this cannot read
the same way line by line (UTF-16, binary, empty, a JSON array, objects over several lines) and
datasets checked against a schema (its check needs the answers together) go the whole-file way:
`stream_report` returns None for them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pipeline import tokens
from pipeline.dataset.jsonl import UnusableJSON, load_value, sniff_binary, unparsed_line
from pipeline.dataset.problems import Problem, problem
from pipeline.dataset.readers import JSON_SUFFIXES, convert_prompt_completion, converted_problem, read_dataset
from pipeline.dataset.stats import ExampleFacts, example_facts
from pipeline.dataset.validate import (
    DEFAULT_MODEL,
    ValidationReport,
    _fill_lists,
    assemble_report,
    check_example,
    dedupe_key,
    example_tokens,
    validate_examples,
)

#: Examples held at once: large enough that token counting stays batched, small enough to be cheap.
CHUNK = 1000
_BOM = b"\xef\xbb\xbf"


def validate_file(path: str | Path, model: str = DEFAULT_MODEL, n_epochs: int | None = None, *,
                  system_prompt: str | None = None, columns: Any = None,
                  schema: dict | None = None) -> ValidationReport:
    """Read and validate a file; reading problems (bad lines, encoding) join the report with their lines.
    JSON Lines are read a chunk at a time (below); other files whole."""
    if isinstance(path, (str, Path)) and can_stream(Path(path), schema):
        streamed = stream_report(Path(path), model, n_epochs, system_prompt)
        if streamed is not None:
            return streamed
    return validate_file_whole(path, model, n_epochs, system_prompt=system_prompt, columns=columns, schema=schema)


def validate_file_whole(path: str | Path, model: str = DEFAULT_MODEL, n_epochs: int | None = None, *,
                        system_prompt: str | None = None, columns: Any = None,
                        schema: dict | None = None) -> ValidationReport:
    """validate_file holding every example at once (any format; the reference the streamed path matches)."""
    read = read_dataset(path, system_prompt=system_prompt, columns=columns)
    report = validate_examples(read.examples, model, n_epochs=n_epochs, line_numbers=read.line_numbers,
                               schema=schema)
    report.dataset_problems = list(read.problems) + report.dataset_problems
    report.readable = read.readable
    report.n_unparsed = len(read.unparsed)
    _fill_lists(report)
    return report


class _WholeFile(Exception):
    """This file needs the whole-file reader (see the module docstring)."""


def can_stream(path: Path, schema: dict | None) -> bool:
    return schema is None and path.is_file() and path.suffix.lower() in JSON_SUFFIXES


def stream_report(path: Path, model: str, n_epochs: int | None, system_prompt: str | None) -> ValidationReport | None:
    """The ValidationReport of a JSON Lines file, read a chunk at a time; None -> use the whole-file path."""
    try:
        return _stream(path, model, n_epochs, system_prompt)
    except _WholeFile:
        return None


def _text_lines(path: Path, problems: list[Problem]):
    """(line number, text) of each line, decoded as readers' decode_lines does (\\n only, \\r dropped)."""
    with path.open("rb") as fh:
        head = fh.read(8192)
        if head.startswith(b"PAR1") or sniff_binary(head) is not None or head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise _WholeFile  # Parquet, binary, compressed, UTF-16: decoded as a whole there
        fh.seek(0)
        for n, raw in enumerate(fh, start=1):
            if n == 1 and raw.startswith(_BOM):
                raw = raw[3:]
                problems.append(problem("utf8_bom", "The file starts with a UTF-8 byte-order mark; it was "
                                        "ignored. Save as 'UTF-8' (not 'UTF-8 with BOM') for other tools.", line=1))
            final = not raw.endswith(b"\n")
            raw = raw[:-1] if not final else raw
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                text = raw.decode("utf-8", errors="replace")
                problems.append(problem(
                    "invalid_utf8", f"Line {n} has bytes that are not UTF-8 (byte {exc.start + 1} of the line; "
                    "shown as \ufffd). Re-save the file as UTF-8, or retype the damaged characters.", line=n))
            text = text[:-1] if text.endswith("\r") else text
            if final and text == "":
                return  # the whole-file reader does not count what follows the final newline as a line
            yield n, text


def _stream(path: Path, model: str, n_epochs: int | None, system_prompt: str | None) -> ValidationReport:
    counter = tokens.counter_for(model)
    decode_problems: list[Problem] = []  # kept apart: the whole-file reader lists them before the rest
    read_problems: list[Problem] = []
    lines: list[int] = []
    checks: list[list[Problem]] = []
    keys: list[bytes] = []
    lengths: list[int] = []
    facts: list[ExampleFacts] = []
    converted: list[int] = []
    n_unparsed = 0
    seen_text = False
    chunk: list[tuple[int, Any, str | None]] = []

    def flush() -> None:
        examples = [ex for _, ex, _ in chunk]
        for n, ex, text in chunk:
            checks.append(check_example(ex, n, len(lines), text))
            lines.append(n)
            keys.append(hashlib.blake2b(dedupe_key(ex).encode("utf-8", "surrogatepass"), digest_size=16).digest())
        lengths.extend(example_tokens(examples, counter))
        facts.extend(example_facts(examples, counter))
        chunk.clear()

    for n, line in _text_lines(path, decode_problems):
        if not line.strip():
            read_problems.append(problem("blank_line", f"Line {n} is blank and was skipped. Delete blank "
                                         "lines: OpenAI expects one JSON object on every line.", line=n))
            continue
        if not seen_text and line.lstrip().startswith("["):
            raise _WholeFile  # maybe a JSON array
        try:
            value = load_value(line)
        except UnusableJSON as exc:
            if not seen_text and line.lstrip().startswith("{"):
                raise _WholeFile from None  # maybe objects spread over several lines
            bad = unparsed_line(n, line, exc)
            read_problems.append(problem(bad.code, bad.message, line=n))
            n_unparsed += 1
            seen_text = True
            continue
        seen_text = True
        chat = convert_prompt_completion(value, system_prompt)
        if chat is not None:
            converted.append(n)
        # `text` lets check_example skip re-walking a value whose JSON text is plainly fine.
        chunk.append((n, value if chat is None else chat, line if chat is None else None))
        if len(chunk) >= CHUNK:
            flush()
    if not seen_text:
        raise _WholeFile  # empty or all blank: reported as an empty file there
    flush()
    if converted:
        read_problems.append(converted_problem(converted))
    # assemble_report needs the examples themselves only for their number once `facts` are given
    # (and no schema): a list of placeholders of the right length stands in for them.
    report = assemble_report(model, counter, [None] * len(lines), lines, checks, keys, lengths,
                             n_epochs=n_epochs, facts=facts)
    report.dataset_problems = decode_problems + read_problems + report.dataset_problems
    report.n_unparsed = n_unparsed
    _fill_lists(report)
    return report
