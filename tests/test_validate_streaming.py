"""validate_file reads JSON Lines a chunk at a time (pipeline.dataset.streaming) and must report exactly
what the whole-file path (validate_file_whole: read_dataset + validate_examples) reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_validate_contract import _LINE, dataset_files

from pipeline.dataset import streaming
from pipeline.dataset.streaming import validate_file, validate_file_whole


def _same(path: Path, **kw) -> dict:
    new, old = validate_file(path, **kw), validate_file_whole(path, **kw)
    assert new.to_json() == old.to_json()
    assert [[p.as_dict() for p in ps] for ps in new.example_problems] == \
        [[p.as_dict() for p in ps] for ps in old.example_problems]
    assert [p.as_dict() for p in new.dataset_problems] == [p.as_dict() for p in old.dataset_problems]
    assert new.token_lengths == old.token_lengths
    return new.to_json()


def _chat(user: str, answer: str, system: bool = True, **extra) -> dict:
    msgs = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return {"messages": ([{"role": "system", "content": "Classify."}] if system else []) + msgs, **extra}


_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
_CALL = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
    "name": "get_weather", "arguments": '{"city": "Oslo"}'}}]}


def _varied_lines() -> list[str]:
    out = [json.dumps(_chat(f"text {i}", ["spam", "ham", "ham", "eggs"][i % 4])) for i in range(60)]
    out[5] = out[4]  # a duplicate
    out[7] = json.dumps(_chat("x", "y", system=False, extra_key=1))
    out[9] = '{"messages": [{"role": "user", "content": "broken"'  # invalid JSON
    out[11] = ""  # blank
    out[13] = json.dumps({"prompt": "Q? ", "completion": " A"})
    out[15] = json.dumps({"messages": [{"role": "user", "content": "weather?"}, _CALL,
                                       {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                                       {"role": "assistant", "content": "Sunny."}], "tools": [_TOOL]})
    out[17] = json.dumps(_chat("é ünïcode", "ham"), ensure_ascii=False)
    out[19] = '{"w": NaN}'
    out[21] = json.dumps(_chat("long " * 20000, "ham"))  # over the training context? counted either way
    return out


@pytest.mark.parametrize("variant", ["lf", "crlf", "bom", "bad_utf8", "no_final_newline", "trailing_cr"])
def test_varied_files_report_the_same_streamed(tmp_path: Path, variant: str) -> None:
    lines = _varied_lines()
    text = ("\r\n" if variant == "crlf" else "\n").join(lines) + ("" if variant == "no_final_newline" else "\n")
    data = text.encode("utf-8")
    if variant == "bom":
        data = b"\xef\xbb\xbf" + data
    if variant == "bad_utf8":
        data = data.replace(b"text 30", b"text \xff30")
    if variant == "trailing_cr":
        data += b"\r"
    path = tmp_path / "data.jsonl"
    path.write_bytes(data)
    report = _same(path)
    codes = {p["code"] for p in report["errors"] + report["warnings"]}
    assert {"duplicate", "invalid_json", "blank_line", "converted_prompt_completion"} <= codes
    assert report["stats"]["with_tools"] == 1


def test_labels_and_system_prompt_and_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streaming, "CHUNK", 7)  # several chunks, duplicates across them
    lines = [json.dumps(_chat(f"t{i % 25}", ["yes", "no", "no"][i % 3])) for i in range(75)]
    lines += [json.dumps({"prompt": f"p{i}", "completion": "no"}) for i in range(3)]
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = _same(path, system_prompt="Answer yes or no.", n_epochs=2)
    assert report["stats"]["labels"] == {"no": 53, "yes": 25}
    # t{k} comes three times (lines k+1, k+26, k+51) with answers yes/no/no in some order: one repeat each.
    assert sum(p["code"] == "duplicate" for p in report["warnings"]) == 25


def test_jsonl_is_not_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a, **_k):
        raise AssertionError("read_dataset called: the JSONL file was read whole")

    monkeypatch.setattr(streaming, "read_dataset", refuse)  # what validate_file_whole reads with
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(_chat(f"q{i}", "a")) for i in range(20)) + "\n", encoding="utf-8")
    assert validate_file(path).n_examples == 20


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(dataset_files())
def test_any_file_reports_the_same(tmp_path: Path, case: tuple[str, bytes]) -> None:
    suffix, data = case
    path = tmp_path / f"data{suffix}"
    path.write_bytes(data)
    _same(path)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(_LINE, min_size=1, max_size=20), st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_any_jsonl_lines_report_the_same(tmp_path: Path, lines: list[str], sep: str, final: bool) -> None:
    path = tmp_path / "lines.jsonl"
    path.write_bytes((sep.join(lines) + (sep if final else "")).encode("utf-8", errors="surrogatepass"))
    _same(path)
