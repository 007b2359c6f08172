"""Readers: every format, and bad files that must neither crash nor lose a line silently."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from pipeline.dataset import read_dataset, to_jsonl, write_csv, write_jsonl, write_parquet
from pipeline.errors import UnreadableFileError

RICH = [
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Héllo — 你好 \u2028 ok"},
                  {"role": "assistant", "content": "Hi.", "weight": 1}]},
    {"messages": [{"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
                   "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
                  {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                  {"role": "assistant", "content": "18 degrees.", "weight": 0}],
     "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]},
    {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "name": "bot", "content": None,
                   "function_call": {"name": "f", "arguments": "{}"}}],
     "functions": [{"name": "f", "parameters": {}}]},
    {"messages": [{"role": "user", "content": "1.5e3 and 0.1"}, {"role": "assistant", "content": "ok"}], "n": 1.25},
]


def codes(result) -> list[str]:
    return [p.code for p in result.problems]


def test_chat_jsonl_round_trips_byte_for_byte(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(to_jsonl(RICH), encoding="utf-8")
    result = read_dataset(src)
    assert result.examples == RICH and result.problems == [] and result.line_numbers == [1, 2, 3, 4]
    out = write_jsonl(result.examples, tmp_path / "out.jsonl")
    assert out.read_bytes() == src.read_bytes()


def test_compact_json_reads_to_the_same_examples(tmp_path: Path) -> None:
    src = tmp_path / "compact.jsonl"
    src.write_text("".join(json.dumps(e, separators=(",", ":")) + "\r\n" for e in RICH), encoding="utf-8")
    assert read_dataset(src).examples == RICH


def test_legacy_prompt_completion_converted_with_system_prompt(tmp_path: Path) -> None:
    src = tmp_path / "legacy.jsonl"
    src.write_text('{"prompt": "Who is Jonny?\\n\\n###\\n\\n", "completion": " An inventor.\\n"}\n', encoding="utf-8")
    result = read_dataset(src, system_prompt="You know Jonny.")
    assert result.examples == [{"messages": [{"role": "system", "content": "You know Jonny."},
                                             {"role": "user", "content": "Who is Jonny?\n\n###"},
                                             {"role": "assistant", "content": "An inventor."}]}]
    assert codes(result) == ["converted_prompt_completion"]
    plain = read_dataset(src)
    assert [m["role"] for m in plain.examples[0]["messages"]] == ["user", "assistant"]


@pytest.mark.parametrize("header,expected_user", [
    ("question,answer", "Q1"), ("Prompt,Completion", "Q1"), ("instruction,output", "Q1"),
])
def test_csv_pairs_detected(tmp_path: Path, header: str, expected_user: str) -> None:
    src = tmp_path / "t.csv"
    src.write_text(f'{header}\nQ1,"A1, with comma\nand newline"\nQ2,A2\n', encoding="utf-8")
    result = read_dataset(src)
    assert result.line_numbers == [2, 4]
    assert result.examples[0]["messages"] == [{"role": "user", "content": expected_user},
                                              {"role": "assistant", "content": "A1, with comma\nand newline"}]


def test_alpaca_input_and_system_column_and_tsv(tmp_path: Path) -> None:
    src = tmp_path / "t.tsv"
    src.write_text("system\tinstruction\tinput\toutput\nBe kind\tSum\t2 and 3\t5\n", encoding="utf-8")
    ex = read_dataset(src).examples[0]
    assert ex["messages"] == [{"role": "system", "content": "Be kind"}, {"role": "user", "content": "Sum\n\n2 and 3"},
                              {"role": "assistant", "content": "5"}]


def test_csv_chosen_columns_and_missing_columns(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("q,a,notes\nHi,Hello,x\n", encoding="utf-8")
    undetected = read_dataset(src)
    assert not undetected.readable and codes(undetected) == ["missing_columns"]
    chosen = read_dataset(src, columns=["q", "a"], system_prompt="S")
    assert chosen.examples == [{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"},
                                             {"role": "assistant", "content": "Hello"}]}]
    assert read_dataset(src, columns={"user": "q", "assistant": "notes"}).examples[0]["messages"][-1]["content"] == "x"


def test_csv_written_then_read_keeps_every_example(tmp_path: Path) -> None:
    path = write_csv(RICH, tmp_path / "out.csv")
    result = read_dataset(path)
    assert result.examples == RICH and result.problems == []


def test_parquet_round_trip_and_fallback(tmp_path: Path) -> None:
    simple = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
              for i in range(3)]
    assert read_dataset(write_parquet(simple, tmp_path / "s.parquet")).examples == simple
    mixed = RICH + [{"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                                  {"role": "assistant", "content": "x"}]}]
    result = read_dataset(write_parquet(mixed, tmp_path / "m.parquet"))
    assert result.examples == mixed and result.format == "parquet"


def test_parquet_with_question_answer_columns(tmp_path: Path) -> None:
    import pandas as pd

    pd.DataFrame({"question": ["Who?"], "answer": ["Jonny"]}).to_parquet(tmp_path / "qa.parquet")
    assert read_dataset(tmp_path / "qa.parquet").examples[0]["messages"][1]["content"] == "Jonny"


def test_datasets_dataset_object_and_saved_folder(tmp_path: Path) -> None:
    import datasets

    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}] * 2
    ds = datasets.Dataset.from_list(rows)
    assert read_dataset(ds).examples == rows
    ds.save_to_disk(str(tmp_path / "saved"))
    result = read_dataset(tmp_path / "saved")
    assert result.examples == rows and result.line_numbers == [1, 2]


# ---- bad files ------------------------------------------------------------------------------------

GOOD = '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}'


def test_invalid_json_line_is_kept_raw_with_its_line(tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text(f"{GOOD}\n{{\"messages\": [\n{GOOD}\n", encoding="utf-8")
    result = read_dataset(src)
    assert result.line_numbers == [1, 3]
    assert [(u.line, u.raw, u.code) for u in result.unparsed] == [(2, '{"messages": [', "invalid_json")]
    (p,) = result.problems
    assert (p.line, p.code, p.severity) == (2, "invalid_json", "error") and "Fix the line" in p.message


def test_bom_blank_lines_and_non_utf8(tmp_path: Path) -> None:
    src = tmp_path / "enc.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + GOOD.encode() + b"\n\n   \n" + GOOD.replace("yo", "caf\xe9").encode("latin-1")
                    + b"\n")
    result = read_dataset(src)
    got = [(p.line, p.code, p.severity) for p in result.problems]
    assert (1, "utf8_bom", "warning") in got and (2, "blank_line", "warning") in got
    assert (3, "blank_line", "warning") in got and (4, "invalid_utf8", "error") in got
    assert result.line_numbers == [1, 4]
    assert result.examples[1]["messages"][1]["content"] == "caf\ufffd"


def test_json_array_instead_of_jsonl(tmp_path: Path) -> None:
    src = tmp_path / "arr.json"
    src.write_text(f"[\n  {GOOD},\n  {GOOD}\n]\n", encoding="utf-8")
    result = read_dataset(src)
    assert len(result.examples) == 2 and result.line_numbers == [2, 3] and codes(result) == ["json_array"]


def test_pretty_printed_objects(tmp_path: Path) -> None:
    src = tmp_path / "pretty.jsonl"
    src.write_text(json.dumps(json.loads(GOOD), indent=2) + "\n" + json.dumps(json.loads(GOOD), indent=2),
                   encoding="utf-8")
    result = read_dataset(src)
    assert len(result.examples) == 2 and result.unparsed == [] and codes(result) == ["multiline_json"]


@pytest.mark.parametrize("data,code", [
    (b"", "empty_file"), (b"\n \n", "empty_file"), (b"\x00\x01\x02ELF\x00" * 50, "binary_file"),
    (gzip.compress(GOOD.encode()), "compressed_file"),
])
def test_empty_binary_compressed(tmp_path: Path, data: bytes, code: str) -> None:
    src = tmp_path / "f.jsonl"
    src.write_bytes(data)
    result = read_dataset(src)
    assert codes(result) == [code] and result.examples == [] and result.problems[0].line == 1
    assert result.readable == (code == "empty_file")


def test_utf16_file_is_read(tmp_path: Path) -> None:
    src = tmp_path / "u16.jsonl"
    src.write_bytes((GOOD + "\n").encode("utf-16"))
    result = read_dataset(src)
    assert len(result.examples) == 1 and codes(result) == ["utf16_file"]


def test_missing_file_raises_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError):
        read_dataset(tmp_path / "nope.jsonl")


def test_fifty_megabyte_file_with_one_bad_line(tmp_path: Path) -> None:
    line = json.dumps({"messages": [{"role": "user", "content": "q" * 400},
                                    {"role": "assistant", "content": "a" * 600}]})
    n = 50 * 1024 * 1024 // (len(line) + 1) + 1
    src = tmp_path / "big.jsonl"
    with src.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(("{oops" if i == n // 2 else line) + "\n")
    assert src.stat().st_size >= 50 * 1024 * 1024 - 2000
    result = read_dataset(src)
    assert len(result.examples) == n - 1
    assert [(u.line, u.code) for u in result.unparsed] == [(n // 2 + 1, "invalid_json")]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".json", ".txt"])
def test_random_bytes_never_crash(tmp_path: Path, suffix: str) -> None:
    import random

    rng = random.Random(suffix)
    pieces = [b"{", b"}", b"[", b"]", b'"', b",", b"\n", b"\r\n", b"\xff", b"\xc3", b"a", b"\t", b":", b" ",
              GOOD.encode(), b"\xef\xbb\xbf"]
    for i in range(150):
        src = tmp_path / f"r{i}{suffix}"
        src.write_bytes(b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 60))))
        result = read_dataset(src)
        stream = {"json_array", "multiline_json", "binary_file", "compressed_file"} & set(codes(result))
        if suffix == ".jsonl" and not stream and "empty_file" not in codes(result):
            # every non-blank line is an example or a kept raw line; every blank one is reported
            data = src.read_bytes().removeprefix(b"\xef\xbb\xbf")
            kept = set(result.line_numbers) | {u.line for u in result.unparsed}
            blank = {p.line for p in result.problems if p.code in ("blank_line", "empty_file")}
            lines = data.split(b"\n")
            for n, raw in enumerate(lines[:-1] if lines[-1] == b"" else lines, start=1):
                assert n in (kept if raw.strip() else blank), (n, raw, data)
