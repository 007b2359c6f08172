"""The Dataset tab's cached view: the same report and rows as validating from scratch, with work in
proportion to the change (one edited row is re-checked, an appended batch only its rows)."""

from __future__ import annotations

import json
import secrets

import pytest

from components import dataset as tab
from pipeline import drafts, tokens
from pipeline.dataset import draft_view, editing
from pipeline.dataset.draft_view import DraftCache
from pipeline.dataset.jsonl import Unparsed
from pipeline.dataset.problems import problem
from pipeline.dataset.validate import _fill_lists, validate_examples

MODEL = "gpt-4o-mini-2024-07-18"


def example(i: int, system: bool = True) -> dict:
    msgs = [{"role": "system", "content": "Be brief."}] if system else []
    return {"messages": [*msgs, {"role": "user", "content": f"question {i}"},
                         {"role": "assistant", "content": f"answer {i}"}]}


def mixed() -> list:
    return [example(0), example(1, system=False), example(0), {"messages": []}, ["not", "a", "dict"],
            {"messages": [{"role": "user", "content": "x" * 200_000}, {"role": "assistant", "content": "y"}]},
            *[example(i) for i in range(2, 14)]]


class Spy:
    """Counts the examples checked and tokenized (whole, and their answers for the statistics)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.checked = self.tokenized = self.answers = 0
        real_check, real_count, real_answers = draft_view.check_example, tokens.count_examples, draft_view.example_facts

        def check(ex, line, index, text=None):
            self.checked += 1
            return real_check(ex, line, index, text)

        def count(examples, counter):
            examples = list(examples)
            self.tokenized += len(examples)
            return real_count(examples, counter)

        def answers(examples, counter):
            self.answers += len(examples)
            return real_answers(examples, counter)

        monkeypatch.setattr(draft_view, "check_example", check)
        monkeypatch.setattr(draft_view, "example_facts", answers)
        monkeypatch.setattr(tokens, "count_examples", count)


def test_the_cached_report_and_rows_equal_validating_from_scratch() -> None:
    examples = mixed()
    raw = [Unparsed(7, "{broken", "invalid_json", "Not valid JSON.")]
    lines = [json.dumps(ex, ensure_ascii=False) for ex in examples]
    cache = DraftCache()
    for _ in range(2):  # computed, then from the cache
        report, entries = cache.report(lines, raw, MODEL)
        expected = validate_examples(examples, MODEL)  # what the tab did before it cached anything:
        expected.dataset_problems.append(problem("invalid_json", "Row raw 1: Not valid JSON."))
        expected.n_unparsed = 1
        _fill_lists(expected)
        assert report.to_json() == expected.to_json() and report.errors[0]["code"] == "invalid_json"
        assert report.example_problems == expected.example_problems
        assert cache.rows(entries, raw, report, len(examples)) == editing.build_rows(
            examples, raw, expected.example_problems)


def test_a_cell_edit_rechecks_one_row(monkeypatch: pytest.MonkeyPatch) -> None:
    visitor = "view-" + secrets.token_hex(6)
    drafts.save_draft(visitor, [example(i) for i in range(300)])
    cache = DraftCache()
    shown = tab.validate_dataset(visitor, MODEL, 0, draft_cache=cache)
    table = [list(row) for row in shown["table_df"]]
    spy = Spy(monkeypatch)
    table[41][3] = "a better answer"
    out = tab.save_edits(table, shown["rendered"], visitor, MODEL, 0, draft_cache=cache)
    assert (spy.checked, spy.tokenized, spy.answers) == (1, 1, 1)
    assert drafts.load_draft(visitor)[41]["messages"][2]["content"] == "a better answer"
    assert len(drafts.load_draft(visitor)) == 300
    assert out["table_df"] == table and "300 examples" in out["summary_md"]


def test_an_appended_batch_checks_only_its_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    visitor = "view-" + secrets.token_hex(6)
    drafts.save_draft(visitor, [example(i) for i in range(100)])
    cache = DraftCache()
    list(tab.show_draft(visitor, 0, MODEL, 0, draft_cache=cache))
    spy = Spy(monkeypatch)
    drafts.append_to_draft(visitor, [example(i) for i in range(100, 110)])
    *_, out = tab.show_draft(visitor, 1, MODEL, 0, draft_cache=cache)
    assert (spy.checked, spy.tokenized, spy.answers) == (10, 10, 10)
    assert len(out["table_df"]) == 110 and out["report_json"]["examples"] == 110
    list(tab.show_draft(visitor, 1, MODEL, 0, draft_cache=cache))  # nothing new: nothing checked
    assert (spy.checked, spy.tokenized) == (10, 10)


def test_a_row_moved_by_a_delete_is_checked_again_with_its_new_line() -> None:
    visitor = "view-" + secrets.token_hex(6)
    drafts.save_draft(visitor, [example(1, system=False), example(2, system=False)])
    cache = DraftCache()
    tab.validate_dataset(visitor, MODEL, 0, draft_cache=cache)
    out = tab.delete_rows("1", visitor, MODEL, 0, draft_cache=cache)
    [row] = out["table_df"]
    assert row[0] == "1" and out["report_json"]["warnings"][-1]["line"] == 1
    assert "Line 1 has no system message" in out["report_json"]["warnings"][-1]["message"]


def test_text_checks_judged_from_the_stored_line_find_what_walking_the_value_finds() -> None:
    """The cache judges NUL, lone surrogates and deep nesting from the stored line when it plainly has
    none; any line that might is walked as before."""
    deep: object = "x"
    for _ in range(70):
        deep = [deep]
    bad = [{"messages": [{"role": "user", "content": "a\x00b"}, {"role": "assistant", "content": "y"}]},
           {"messages": [{"role": "user", "content": "\ud800"}, {"role": "assistant", "content": "y"}]},
           {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "y"}], "x": deep},
           {"messages": [{"role": "user", "content": "\\u0000 is fine"}, {"role": "assistant", "content": "y"}]}]
    examples = bad + [example(i) for i in range(12)]
    for ensure_ascii in (False, True):
        lines = [json.dumps(ex, ensure_ascii=ensure_ascii) for ex in examples]
        report, _ = DraftCache().report(lines, [], MODEL)
        codes = [[p.code for p in found] for found in report.example_problems[:4]]
        assert codes == [[p.code for p in found] for found in validate_examples(examples, MODEL).example_problems[:4]]
        assert codes[0] == codes[1] == ["unusable_text"] and "too_deeply_nested" in codes[2] and codes[3] == ["missing_system_message"]
