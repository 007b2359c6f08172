"""Split, dedupe, system prompt, and the Dataset tab's table editing + undo (plain functions)."""

from __future__ import annotations

import json

import pytest

from pipeline import drafts
from pipeline.dataset import dedupe_examples, set_system_prompt, split_examples
from pipeline.dataset import draft_ops as dops
from pipeline.dataset import editing as ed
from pipeline.dataset.jsonl import Unparsed
from pipeline.errors import InputError


def simple(i: int, system: str = "") -> dict:
    return ed.simple_example(system, f"q{i}", f"a{i}")


MULTI = {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "u1"},
                      {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"},
                      {"role": "assistant", "content": "a2", "weight": 1}], "tools": []}


def test_split_is_seeded_disjoint_and_complete() -> None:
    data = [simple(i) for i in range(100)]
    train, val = split_examples(data, 0.2, seed=7)
    assert len(val) == 20 and len(train) == 80
    assert sorted(train + val, key=lambda e: e["messages"][0]["content"]) == \
        sorted(data, key=lambda e: e["messages"][0]["content"])
    assert split_examples(data, 0.2, seed=7) == (train, val)
    assert split_examples(data, 0.2, seed=8)[1] != val
    assert [data.index(e) for e in train] == sorted(data.index(e) for e in train)  # order kept
    assert len(split_examples(data[:3], 0.1, 0)[1]) == 1  # never an empty validation side
    with pytest.raises(InputError):
        split_examples(data, 1.0, 0)


def test_dedupe_exact_only_key_order_ignored() -> None:
    a = simple(1)
    reordered = {"messages": [{"content": m["content"], "role": m["role"]} for m in a["messages"]]}
    kept, removed = dedupe_examples([a, simple(2), json.loads(json.dumps(a)), reordered, simple(1, "sys")])
    assert removed == 2 and kept == [a, simple(2), simple(1, "sys")]


def test_set_system_prompt_replaces_inserts_and_removes() -> None:
    out = set_system_prompt([simple(1), MULTI, "junk"], "New")
    assert out[0]["messages"][0] == {"role": "system", "content": "New"}
    assert out[1]["messages"][0]["content"] == "New" and out[1]["messages"][1:] == MULTI["messages"][1:]
    assert out[2] == "junk"
    assert [m["role"] for m in set_system_prompt(out, "")[1]["messages"]] == ["user", "assistant"] * 2


def test_rows_show_simple_and_multi_turn() -> None:
    rows = ed.build_rows([simple(1, "S"), MULTI], [Unparsed(9, "{bad", "invalid_json", "Line 9 ...")])
    assert rows[0] == ["1", "S", "q1", "a1", "", ""]
    assert rows[1][:4] == ["2", "S", "u1", "a2"] and json.loads(rows[1][4]) == MULTI
    assert rows[2][0] == "raw 1" and rows[2][4] == "{bad"


def test_apply_table_edits_without_flattening() -> None:
    base = [simple(1), MULTI, simple(3)]
    raw = [Unparsed(4, "{bad", "invalid_json", "x")]
    rows = ed.build_rows(base, raw)
    rows[0][3] = "fixed answer"           # simple cell edit
    rows[1][2] = "u1 edited"              # multi-turn: only the first user message changes
    rows[1][3] = "a2 edited"              # ... and the last assistant one
    del rows[2]                           # delete example 3
    rows[2][4] = '{"messages": [{"role": "user", "content": "ok"}, {"role": "assistant", "content": "ok"}]}'
    rows.append(["", "", "new q", "new a", "", ""])  # a row added in the table
    examples, unparsed = ed.apply_table(rows, base, raw)
    assert examples[0]["messages"][1]["content"] == "fixed answer"
    msgs = examples[1]["messages"]
    assert [m["content"] for m in msgs] == ["S", "u1 edited", "a1", "u2", "a2 edited"]
    assert msgs[-1]["weight"] == 1 and examples[1]["tools"] == []
    assert examples[2]["messages"][0]["content"] == "ok"  # the raw row now parses
    assert examples[3] == simple(0) | {"messages": [{"role": "user", "content": "new q"},
                                                    {"role": "assistant", "content": "new a"}]}
    assert unparsed == [] and len(examples) == 4


def test_apply_table_bad_json_edit_stays_visible() -> None:
    rows = ed.build_rows([MULTI], [])
    rows[0][4] = '{"messages": ['
    examples, unparsed = ed.apply_table(rows, [MULTI], [])
    assert examples == [] and unparsed[0].raw == '{"messages": [' and unparsed[0].code == "invalid_json"


def test_unchanged_table_is_identity() -> None:
    base = [simple(1), MULTI, [1, 2]]
    assert ed.apply_table(ed.build_rows(base, []), base, []) == (base, [])


def test_setting_system_cell_on_simple_row() -> None:
    rows = ed.build_rows([simple(1)], [])
    rows[0][1] = "Be nice"
    (example,), _ = ed.apply_table(rows, [simple(1)], [])
    assert example == simple(1, "Be nice")


def test_undo_restores_and_redoes() -> None:
    visitor = "undo-test-visitor"
    dops.save_all(visitor, [simple(1), simple(2)], [Unparsed(3, "{x", "invalid_json", "m")])
    dops.snapshot(visitor, "clearing the table")
    dops.save_all(visitor, [], [])
    assert dops.undo(visitor) == "clearing the table"
    assert drafts.load_draft(visitor) == [simple(1), simple(2)] and dops.load_unparsed(visitor)[0].raw == "{x"
    assert dops.undo(visitor) == "undo of clearing the table" and drafts.load_draft(visitor) == []


def test_row_spec() -> None:
    assert ed.parse_row_spec("3, 5-7, raw 2, 99", 10, 3) == ({2, 4, 5, 6}, {1})
    assert ed.parse_row_spec("nonsense", 10, 3) == (set(), set())


def test_draft_keeps_line_separator_characters() -> None:
    # json.dumps(ensure_ascii=False) leaves U+2028 raw; the draft must not split a line there.
    example = ed.simple_example("", "a\u2028b\u2029c", "d")
    dops.save_all("sep-test-visitor", [example], [])
    assert drafts.load_draft("sep-test-visitor") == [example]
    assert drafts.append_to_draft("sep-test-visitor", [example]) == 2


def test_import_replace_append_and_table_save_keep_generated_rows(tmp_path) -> None:
    from pipeline.dataset import read_dataset, to_jsonl

    visitor = "import-test-visitor"
    src = tmp_path / "d.jsonl"
    src.write_text(to_jsonl([simple(1), simple(2)]) + "\n{bad\n", encoding="utf-8")
    status = dops.import_read(visitor, read_dataset(src), False, "d.jsonl")
    assert "Loaded 2 example(s)" in status and "1 unreadable" in status and "1 blank line" in status
    dops.import_read(visitor, read_dataset(src), True, "d.jsonl")
    assert len(drafts.load_draft(visitor)) == 4 and len(dops.load_unparsed(visitor)) == 2
    rows = ed.build_rows(drafts.load_draft(visitor), dops.load_unparsed(visitor))
    drafts.append_to_draft(visitor, [simple(9)])  # the Generate tab adds a row meanwhile
    rows[0][2] = "edited"
    dops.save_table(visitor, rows, [4, 2])
    saved = drafts.load_draft(visitor)
    assert saved[0]["messages"][0]["content"] == "edited" and saved[-1] == simple(9) and len(saved) == 5
    assert dops.undo(visitor) == "loading d.jsonl" and len(drafts.load_draft(visitor)) == 2


def test_split_and_export_write_files_and_meta() -> None:
    visitor = "export-test-visitor"
    dops.save_all(visitor, [simple(i) for i in range(20)], [])
    files, status = dops.split_draft(visitor, 0.25, 3)
    assert [f.name for f in files] == ["train.jsonl", "validation.jsonl"] and "15 train, 5 validation" in status
    assert "groups of the same lesson: " in status and "none on both sides" in status
    assert drafts.load_meta(visitor)["split"]["validation"] == str(files[1])
    files, _ = dops.export_draft(visitor)
    from pipeline.dataset import read_dataset

    assert read_dataset(files[1]).examples == read_dataset(files[0]).examples == drafts.load_draft(visitor)
    dops.save_all("empty-test-visitor", [], [])
    with pytest.raises(InputError):
        dops.export_draft("empty-test-visitor")
