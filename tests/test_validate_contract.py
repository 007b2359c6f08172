"""`python -m pipeline validate --json` keeps its contract for any input: one JSON object on stdout,
exit 0 (no errors) / 1 (errors) / 2 (unreadable), no traceback; and the dataset readers never raise
for what a file holds. The hostile cases by hand, then generated files (hypothesis)."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.__main__ import main
from pipeline.dataset import read_dataset
from pipeline.dataset.jsonl import MAX_LINE_CHARS
from pipeline.errors import UnreadableFileError

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"examples", "errors", "warnings", "billing_tokens_per_epoch", "n_epochs", "estimated_cost_usd",
        "tokens_approximate", "readable", "unparsed_lines"}
EXAMPLE = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}


def validate_json(path: Path | str) -> tuple[int, dict, str]:
    """Run the command in this process; (exit code, the one JSON object on stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(path), "--json"])
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n"), f"not one line of JSON: {text[:200]!r}"
    data = json.loads(text)
    assert isinstance(data, dict) and set(data) >= KEYS, data
    assert code in (0, 1, 2)
    assert code == (2 if not data["readable"] else 1 if data["errors"] else 0), (code, data)
    assert "Traceback" not in err
    assert not [e for e in data["errors"] if e["code"] == "internal_error"], data["errors"]
    return code, data, err


def _line(*parts: str) -> str:
    return '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]' + \
        "".join(parts) + "}\n"


@pytest.mark.parametrize("name, content, code", [
    ("long.jsonl", '{"messages": [{"role": "user", "content": "' + "a" * (50 * 1024 * 1024) + '"}]}\n',
     "line_too_long"),
    ("nested.jsonl", _line(', "x": ' + "[" * 100_000 + "]" * 100_000), "too_deeply_nested"),
    ("nested-a-little.jsonl", _line(', "x": ' + "[" * 500 + "]" * 500), "too_deeply_nested"),
    ("digits.jsonl", _line(', "n": ' + "9" * 5000), "number_too_long"),
    ("array.jsonl", "[" * 100_000 + "]" * 100_000 + "\n", "too_deeply_nested"),
    ("surrogate.jsonl", '{"messages": [{"role": "user", "content": "hi \\ud800"}, '
                        '{"role": "assistant", "content": "yo"}]}\n', "unusable_text"),
    ("surrogate-key.jsonl", _line(', "\\udfff": 1'), "unusable_text"),
    ("nul.jsonl", '{"messages": [{"role": "user", "content": "a\\u0000b"}, '
                  '{"role": "assistant", "content": "yo"}]}\n', "unusable_text"),
    ("nan.jsonl", _line(', "weight": NaN'), "invalid_json"),
    # Curly quotes make the line invalid; straightened (for the hint) it holds a number too long to read.
    ("curly.jsonl", "{\u201cn\u201d: " + "9" * 5000 + "}\n", "invalid_json"),
])
def test_hostile_lines_are_errors_at_their_line(tmp_path: Path, name: str, content: str, code: str) -> None:
    path = tmp_path / name
    path.write_text(json.dumps(EXAMPLE) + "\n" + content, encoding="utf-8")
    exit_code, data, _ = validate_json(path)
    assert exit_code == 1 and data["readable"] is True
    assert [(e["line"], e["code"]) for e in data["errors"] if e["line"] is not None] == [(2, code)]
    assert data["examples"] == 1 and data["unparsed_lines"] == 1  # line 1 is still read; line 2 kept


def test_the_overlong_line_is_kept_but_not_whole() -> None:
    from pipeline.dataset.readers import read_jsonl_bytes

    read = read_jsonl_bytes(b'"' + b"x" * (MAX_LINE_CHARS + 1) + b'"\n')
    assert read.unparsed[0].code == "line_too_long" and len(read.unparsed[0].raw) < 3000


@pytest.mark.parametrize("what", ["missing", "folder", "empty folder with a dot.jsonl"])
def test_unreadable_input_is_one_json_object_and_exit_2(tmp_path: Path, what: str) -> None:
    path = tmp_path / what
    if what != "missing":
        path.mkdir()
    exit_code, data, _ = validate_json(path)
    assert exit_code == 2 and data["readable"] is False and data["examples"] == 0
    assert data["errors"][0]["code"] == "unreadable_file" and str(path) in data["errors"][0]["message"]


def test_a_real_process_prints_only_the_json(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "pipeline", "validate", str(path), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert json.loads(proc.stdout)["errors"][-1]["code"] == "too_deeply_nested"


def test_examples_from_the_draft_are_checked_too() -> None:
    """Text the trainer cannot encode is refused wherever the example came from (a table edit)."""
    from pipeline.dataset import validate_examples

    bad = {"messages": [{"role": "user", "content": "a\ud83d"}, {"role": "assistant", "content": "b"}]}
    report = validate_examples([bad] + [EXAMPLE] * 10, "gpt-4o-mini-2024-07-18")
    assert [(e["line"], e["code"]) for e in report.errors] == [(1, "unusable_text")]


# ---- generated files --------------------------------------------------------------------------

_ODD = st.sampled_from(["\ud800", "\udfff", "a\ud83d", "\x00", "\u2028", "\ufeff", "é", "\r", "\\"])
_TEXT = st.one_of(st.text(max_size=30), _ODD, st.builds(lambda a, b: a + b, st.text(max_size=10), _ODD))
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                     _TEXT)
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(_TEXT, inner, max_size=4)), max_leaves=12)
_MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant", "tool", "x"]),
                                  "content": st.one_of(_TEXT, st.none(), st.integers(), _VALUES)},
                                 optional={"weight": st.sampled_from([0, 1, 2, "1", None]), "name": _TEXT})
_EXAMPLE = st.one_of(st.fixed_dictionaries({"messages": st.lists(_MESSAGE, max_size=4)}),
                     st.fixed_dictionaries({"prompt": _TEXT, "completion": _TEXT}), _VALUES)


def _dumped(value: object, ascii_only: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_only)


_LINE = st.one_of(
    st.builds(_dumped, _EXAMPLE, st.booleans()),
    st.integers(0, 3000).map(lambda n: '{"messages": ' + "[" * n + "]" * n + "}"),
    st.integers(0, 3000).map(lambda n: '{"a": ' * n + "1" + "}" * n),
    st.integers(1, 6000).map(lambda n: '{"n": ' + "7" * n + "}"),
    st.sampled_from(["NaN", "-Infinity", '{"w": Infinity}', "", " ", "[", "]", "{", "}", ",", "user,assistant",
                     '"only a string"', "1e999", "-0", "[1,]", '{"messages": []}']),
    st.text(max_size=80),
)


@st.composite
def dataset_files(draw: st.DrawFn) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from([".jsonl", ".json", ".csv", ".tsv", ".txt", ".parquet", ".ndjson", ""]))
    if draw(st.integers(0, 9)) == 0:
        return suffix, draw(st.binary(max_size=300))
    lines = draw(st.lists(_LINE, max_size=14))
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines)
    if draw(st.booleans()):
        text = "[" + ",".join(lines) + "]"
    prefix = draw(st.sampled_from(["", "\ufeff"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-16"]))
    # surrogatepass: a lone surrogate typed raw (not as a \u escape) becomes bytes that are not UTF-8
    return suffix, (prefix + text).encode(encoding, errors="surrogatepass")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(dataset_files())
def test_any_file_keeps_the_contract(tmp_path: Path, case: tuple[str, bytes]) -> None:
    suffix, data = case
    path = tmp_path / f"data{suffix}"
    path.write_bytes(data)
    try:
        read = read_dataset(path)  # never raises for what the file holds
    except UnreadableFileError:
        pytest.fail("a file that exists was called unreadable by raising")
    assert len(read.examples) == len(read.line_numbers)
    code, report, _ = validate_json(path)
    assert report["examples"] == len(read.examples)
    # Whatever was read is text the trainer can encode and that JSON can carry.
    json.dumps(read.examples, ensure_ascii=False).encode("utf-8")
