"""Bytes -> text lines -> JSON values, keeping every line accounted for.

A line that is not valid JSON is kept as an `Unparsed` row with its raw text (never dropped), so the
user can see and fix it. Blank lines, byte-order marks, non-UTF-8 bytes, a JSON array instead of JSON
Lines and objects spread over several lines are each reported with their line number.

Every JSON value is read through `load_value`, which turns whatever the text holds into a problem
with its line rather than an exception: a line longer than MAX_LINE_CHARS, nesting deeper than
MAX_DEPTH, a number too long for Python (> 4,300 digits), NaN/Infinity (not JSON; OpenAI refuses
them), and strings the trainer or OpenAI cannot take (lone UTF-16 surrogates, NUL characters).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pipeline.dataset.hints import json_paste_hint
from pipeline.dataset.problems import Problem, problem

_SNIFF = 8192
#: Longest line read as JSON (characters). OpenAI's largest fine-tuning context is 128k tokens
#: (about 0.5 M characters); 4 M leaves room for inline images and keeps counting fast.
MAX_LINE_CHARS = 4 * 1024 * 1024
#: Deepest nesting of arrays/objects in one example (a chat example with tool schemas needs ~10).
MAX_DEPTH = 64
#: Shown of an overlong line that is kept as unparsed text.
KEEP_CHARS = 2000
# Lone surrogates cannot be encoded as UTF-8 (the trainer's tokenizer and OpenAI's API refuse them);
# NUL ends strings in C code on the way.
_UNUSABLE = re.compile(r"[\ud800-\udfff\x00]")


class UnusableJSON(ValueError):
    """A JSON value the data cannot hold; `code` is the problem code, the message says what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _no_constant(name: str) -> Any:
    raise UnusableJSON("invalid_json", f"{name} is not a JSON number (OpenAI refuses it); write a number "
                       "or a string instead")


def load_value(text: str) -> Any:
    """json.loads with limits: UnusableJSON (code + message) instead of any other exception."""
    if len(text) > MAX_LINE_CHARS:
        raise UnusableJSON("line_too_long", f"it is {len(text):,} characters long, more than the "
                           f"{MAX_LINE_CHARS:,} read as one example; shorten or split it")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except UnusableJSON:
        raise
    except json.JSONDecodeError as exc:
        raise UnusableJSON("invalid_json", f"{exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise UnusableJSON("too_deeply_nested", f"it is nested deeper than {MAX_DEPTH} levels; no "
                           "chat example is") from None
    except ValueError:  # int() refuses more than 4,300 digits
        raise UnusableJSON("number_too_long", "it holds a number with more than 4,300 digits; write it "
                           "as a string") from None
    check_value(value)
    return value


def check_value(value: Any) -> None:
    """Depth and text checks on a parsed value (iterative: a deep value must not recurse here)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            raise UnusableJSON("too_deeply_nested", f"it is nested deeper than {MAX_DEPTH} levels; no "
                               "chat example is")
        if isinstance(item, dict):
            for key, inner in item.items():
                _check_text(key)
                stack.append((inner, depth + 1))
        else:
            stack.extend((inner, depth + 1) for inner in item)


def plainly_usable(text: str) -> bool:
    """True when the JSON `text` certainly parses to a value `check_value` accepts, judged from the
    text in one pass: no escape that could spell a NUL or a surrogate, no such character raw, and
    fewer brackets than MAX_DEPTH (so no deeper nesting). Walking the parsed value instead took a
    quarter of the Dataset tab's first paint of a large draft."""
    return "\\u" not in text and not _UNUSABLE.search(text) and text.count("[") + text.count("{") < MAX_DEPTH


def _check_text(text: str) -> None:
    bad = _UNUSABLE.search(text)
    if bad:
        char = bad.group()
        what = "a NUL character" if char == "\x00" else f"a lone UTF-16 surrogate (\\u{ord(char):04x})"
        raise UnusableJSON("unusable_text", f"it holds {what}, which the trainer and OpenAI cannot take; "
                           "delete or retype that character")


@dataclass
class Unparsed:
    """A line that could not be read as an example, kept with its raw text so it can be fixed."""

    line: int
    raw: str
    code: str
    message: str


@dataclass
class Parsed:
    values: list[Any] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    unparsed: list[Unparsed] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    readable: bool = True


def sniff_binary(data: bytes) -> str | None:
    """'compressed' / 'binary' when the bytes cannot be a text file, else None."""
    head = data[:_SNIFF]
    if head.startswith((b"\x1f\x8b", b"PK\x03\x04", b"BZh", b"\xfd7zXZ", b"(\xb5/\xfd")):
        return "compressed"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None  # UTF-16 text: NUL bytes are expected
    if b"\x00" in head:
        return "binary"
    return None


def decode_lines(data: bytes, out: Parsed) -> list[str] | None:
    """Split bytes into text lines (on \\n only: JSON strings may hold U+2028), reporting encoding issues.

    Returns None (and marks `out` unreadable) when the bytes are not text at all.
    """
    kind = sniff_binary(data)
    if kind == "compressed":
        out.problems.append(problem("compressed_file", "The file is compressed (gzip/zip/...). "
                                    "Extract it and load the .jsonl/.csv inside.", line=1))
        out.readable = False
        return None
    if kind == "binary":
        out.problems.append(problem("binary_file", "The file is binary, not text (it contains NUL bytes). "
                                    "Load a .jsonl, .csv, .tsv or .parquet file.", line=1))
        out.readable = False
        return None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", errors="replace")
        out.problems.append(problem("utf16_file", "The file is UTF-16 (e.g. Notepad's 'Unicode'); it was "
                                    "read, but OpenAI needs UTF-8. Download it again as JSONL to fix.", line=1))
        return _split(text)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        out.problems.append(problem("utf8_bom", "The file starts with a UTF-8 byte-order mark; it was "
                                    "ignored. Save as 'UTF-8' (not 'UTF-8 with BOM') for other tools.", line=1))
    try:
        return _split(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    lines = []
    for n, raw in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            lines.append(raw.decode("utf-8", errors="replace"))
            out.problems.append(problem(
                "invalid_utf8", f"Line {n} has bytes that are not UTF-8 (byte {exc.start + 1} of the line; "
                "shown as \ufffd). Re-save the file as UTF-8, or retype the damaged characters.", line=n))
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _split(text: str) -> list[str]:
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]


def parse_json_lines(lines: list[str], out: Parsed) -> None:
    """Parse one JSON value per line into `out`; fall back to a JSON array or multi-line objects."""
    if _only_blank(lines):
        out.problems.append(problem("empty_file", "The file is empty. Add examples, one JSON object a line.",
                                    line=1))
        return
    first = next(ln for ln in lines if ln.strip()).lstrip()
    if first.startswith("[") and _parse_stream(lines, out, array=True):
        return
    start = len(out.values), len(out.unparsed), len(out.problems)
    last = len(lines) - (1 if lines and lines[-1] == "" else 0)  # a final newline is not a blank line
    for n, line in enumerate(lines[:last], start=1):
        if not line.strip():
            out.problems.append(problem("blank_line", f"Line {n} is blank and was skipped. Delete blank "
                                        "lines: OpenAI expects one JSON object on every line.", line=n))
            continue
        try:
            out.values.append(load_value(line))
            out.lines.append(n)
        except UnusableJSON as exc:
            bad = unparsed_line(n, line, exc)
            out.unparsed.append(bad)
            out.problems.append(problem(bad.code, bad.message, line=n))
    first_line = next(n for n, ln in enumerate(lines, start=1) if ln.strip())
    if len(out.unparsed) > start[1] and out.unparsed[start[1]].line == first_line and first.startswith("{"):
        # Pretty-printed objects (one object over several lines) read as a stream instead.
        saved = out.values[start[0]:], out.lines[start[0]:], out.unparsed[start[1]:], out.problems[start[2]:]
        del out.values[start[0]:], out.lines[start[0]:], out.unparsed[start[1]:], out.problems[start[2]:]
        if not _parse_stream(lines, out, array=False):
            out.values += saved[0]
            out.lines += saved[1]
            out.unparsed += saved[2]
            out.problems += saved[3]


def unparsed_line(n: int, line: str, exc: UnusableJSON) -> Unparsed:
    """Line `n` that load_value refused, with the message that says what to do."""
    if exc.code == "invalid_json":
        msg = (f"Line {n} is not valid JSON ({exc}). Fix the line or delete it; "
               "each line must be one complete JSON object." + json_paste_hint(line))
    else:
        msg = f"Line {n} cannot be used: {exc}."
    raw = line if len(line) <= MAX_LINE_CHARS else line[:KEEP_CHARS] + " …"
    return Unparsed(n, raw, exc.code, msg)


def _only_blank(lines: list[str]) -> bool:
    return all(not ln.strip() for ln in lines)


def _parse_stream(lines: list[str], out: Parsed, *, array: bool) -> bool:
    """Read a JSON array, or JSON values one after another, over line breaks. False if that fails."""
    if any(len(ln) > MAX_LINE_CHARS for ln in lines):
        return False  # read line by line, where the overlong line is reported with its number
    text = "\n".join(lines)
    dec = json.JSONDecoder(parse_constant=_no_constant)
    values, starts = [], []
    pos = counted = 0
    line = 1
    if array:
        pos = text.index("[") + 1
    try:
        while True:
            pos = _skip(text, pos, array)
            if pos >= len(text) or (array and text[pos] == "]"):
                break
            value, end = dec.raw_decode(text, pos)
            check_value(value)
            values.append(value)
            line += text.count("\n", counted, pos)  # counted incrementally: linear in the file size
            counted = pos
            starts.append(line)
            pos = end
        if array:
            if pos >= len(text) or text[pos] != "]" or text[pos + 1:].strip():
                return False
        elif len(values) < 1:
            return False
    except (ValueError, RecursionError):  # JSONDecodeError, UnusableJSON, a number too long, too deep
        return False  # read line by line, where each problem is reported with its line
    if not array and len(values) == sum(1 for ln in lines if ln.strip()):
        return False  # nothing spans lines: line-by-line reading was right
    out.values += values
    out.lines += starts
    if array:
        msg = (f"The file is one JSON array, not JSON Lines; its {len(values)} items were read as examples. "
               "Download as JSONL (one object a line) before uploading it to OpenAI.")
        out.problems.append(problem("json_array", msg, line=1))
    else:
        msg = (f"The {len(values)} JSON objects span several lines each; they were read, but OpenAI needs one "
               "object per line. Download as JSONL to fix.")
        out.problems.append(problem("multiline_json", msg, line=1))
    return True


def _skip(text: str, pos: int, array: bool) -> int:
    """Skip whitespace (and, inside an array, one separating comma)."""
    n = len(text)
    while pos < n and text[pos] in " \t\r\n":
        pos += 1
    if array and pos < n and text[pos] == ",":
        pos += 1
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
    return pos
