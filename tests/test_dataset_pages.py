"""The Dataset tab pages large drafts: one page goes to the browser, an edit on any page (filtered or
searched too) lands on the stored line it showed, undo restores, and the draft files are streamed
(read, appended, copied, exported, deduplicated) with the same results as reading them whole."""

from __future__ import annotations

import json
import secrets

from components import dataset as tab
from components import dataset_render as pages
from pipeline import drafts
from pipeline.dataset import draft_ops as dops
from pipeline.dataset import paging, read_dataset
from pipeline.dataset.draft_view import REPORT_LISTED, DraftCache

MODEL = "gpt-4o-mini-2024-07-18"
PAGE = paging.PAGE_ROWS


def example(i: int) -> dict:
    answer = " " if i % 97 == 5 else f"answer {i}"  # a blank answer (an error) every 97 rows
    return {"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": answer}]}


def visitor_with(n: int) -> str:
    visitor = "pages-" + secrets.token_hex(6)
    drafts.save_draft(visitor, [example(i) for i in range(n)])
    return visitor


class Session:
    """One browser session: the per-session states gradio keeps between calls, fed back in."""

    def __init__(self, visitor: str) -> None:
        self.state = {"visitor": visitor, "model_dd": MODEL, "epochs_num": 0, "dataset_rev": 0,
                      "page_start": 0, "filter_dd": paging.ALL, "search_box": "", "rendered": None,
                      "draft_cache": DraftCache()}

    def __call__(self, fn, **given) -> dict:
        import inspect

        params = inspect.signature(fn).parameters
        out = fn(**{k: v for k, v in {**self.state, **given}.items() if k in params})
        self.updates = list(out) if inspect.isgenerator(out) else [out]
        out = self.updates[-1]  # what the browser ends up with: the last update
        for key in ("rendered", "page_start", "filter_dd", "search_box"):
            if key in out and not is_skip(out[key]):
                self.state[key] = out[key]
        self.state.update({k: given[k] for k in ("filter_dd", "search_box") if k in given})
        return out


def is_skip(value) -> bool:
    """gr.skip() is an update dict (`{"__type__": "update"}`), not a type of its own."""
    return isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1


def keys(out: dict) -> list[str]:
    return [row[0] for row in out["table_df"]]


def answer(visitor: str, row: int) -> str:
    return drafts.load_draft(visitor)[row - 1]["messages"][-1]["content"]


def test_a_50k_draft_sends_one_page_and_a_far_edit_lands_on_its_line() -> None:
    visitor = visitor_with(50_000)
    s = Session(visitor)
    out = s(tab.show_draft)
    quick, full = s.updates  # the first page at once, then everything validated
    assert quick["table_df"] == [[*row[:5], "…"] for row in full["table_df"]] and "checking" in quick["summary_md"]
    assert quick["rendered"] == full["rendered"] and quick["page_md"] == full["page_md"]
    assert keys(out) == [str(i) for i in range(1, PAGE + 1)]
    assert len(json.dumps(out["table_df"])) < 100_000  # one page, not 50,000 rows
    report = out["report_json"]
    assert report["examples"] == 50_000 and len(report["errors"]) == REPORT_LISTED
    assert report["errors_total"] == sum(1 for i in range(50_000) if i % 97 == 5)
    assert "50,000 examples" in out["summary_md"] and "Rows **1–200** of 50,000" in out["page_md"]

    out = s(pages.jump_to_row, jump_box=37_412)
    assert keys(out)[0] == "37412" and len(out["table_df"]) == PAGE
    table = [list(r) for r in out["table_df"]]
    table[0][3] = "edited far down"
    out = s(tab.save_edits, table_df=table)
    assert out["status_md"] == "Saved." and answer(visitor, 37_412) == "edited far down"
    assert answer(visitor, 37_411) == "answer 37410" and answer(visitor, 37_413) == "answer 37412"
    assert len(drafts.draft_lines(visitor)) == 50_000 and keys(out)[0] == "37412"


def test_pages_turn_and_an_edit_on_page_four_lands_on_its_line() -> None:
    visitor = visitor_with(1_000)
    s = Session(visitor)
    s(tab.show_draft)
    for _ in range(3):
        out = s(pages.next_page)
    assert keys(out)[0] == str(3 * PAGE + 1) and "page 4 of 5" in out["page_md"]
    assert set(out) == set(pages.PAGE_ONLY)  # a page turn leaves the summary and chart as they are
    table = [list(r) for r in out["table_df"]]
    at = keys(out).index("700")
    table[at][2] = "a better question"
    s(tab.save_edits, table_df=table)
    saved = drafts.load_draft(visitor)
    assert saved[699]["messages"][0]["content"] == "a better question"
    assert saved[:699] == [example(i) for i in range(699)] and saved[700:] == [example(i) for i in range(700, 1000)]
    assert keys(s(pages.last_page))[-1] == "1000" and keys(s(pages.previous_page))[0] == str(1000 - 2 * PAGE + 1)
    assert keys(s(pages.first_page))[0] == "1"


def test_the_errors_filter_shows_only_them_and_a_fix_lands_and_leaves_it() -> None:
    visitor = visitor_with(1_000)
    s = Session(visitor)
    s(tab.show_draft)
    out = s(pages.filter_rows, filter_dd=paging.ERRORS)
    bad = [str(i + 1) for i in range(1000) if i % 97 == 5]
    assert keys(out) == bad and "rows with errors" in out["page_md"]
    table = [list(r) for r in out["table_df"]]
    table[3][3] = "fixed"  # row 298
    out = s(tab.save_edits, table_df=table)
    assert answer(visitor, int(bad[3])) == "fixed" and keys(out) == bad[:3] + bad[4:]
    assert len(drafts.draft_lines(visitor)) == 1000


def test_search_and_a_jump_to_a_row_the_filter_hides() -> None:
    visitor = visitor_with(1_000)
    s = Session(visitor)
    s(tab.show_draft)
    out = s(pages.filter_rows, search_box='question 77"')  # a quote: matched as stored (escaped)
    assert keys(out) == []
    out = s(pages.filter_rows, search_box="QUESTION 77")
    assert keys(out) == ["78", *[str(i + 1) for i in range(770, 780)]]
    table = [list(r) for r in out["table_df"]]
    table[1][3] = "searched and edited"  # row 771
    s(tab.save_edits, table_df=table)
    assert answer(visitor, 771) == "searched and edited" and answer(visitor, 78) == "answer 77"
    out = s(pages.jump_to_row, jump_box=500)  # not among the search's rows: the search is cleared
    assert keys(out)[0] == "500" and out["search_box"] == "" and "cleared" in out["status_md"]


def test_delete_on_a_far_page_then_undo() -> None:
    visitor = visitor_with(1_000)
    s = Session(visitor)
    s(tab.show_draft)
    s(pages.jump_to_row, jump_box=900)
    out = s(tab.delete_rows, delete_box="901-905")
    assert len(drafts.draft_lines(visitor)) == 995 and keys(out)[0] == "900"  # the page stays
    assert answer(visitor, 901) == "answer 905"
    out = s(tab.undo_change)
    assert "Undid deleting rows 901-905" in out["status_md"]
    assert drafts.load_draft(visitor) == [example(i) for i in range(1000)]


def test_rows_appended_meanwhile_stay_and_a_changed_draft_refuses_a_stale_page() -> None:
    visitor = visitor_with(300)
    s = Session(visitor)
    out = s(pages.next_page)
    drafts.append_to_draft(visitor, [example(1000 + i) for i in range(10)])  # a generation meanwhile
    table = [list(r) for r in out["table_df"]]
    table[0][3] = "edited while generating"
    s(tab.save_edits, table_df=table)
    saved = drafts.load_draft(visitor)
    assert len(saved) == 310 and saved[200]["messages"][-1]["content"] == "edited while generating"
    assert saved[-1] == example(1009)

    out = s(tab.show_draft)
    drafts.save_draft(visitor, [example(5000 + i) for i in range(300)])  # replaced elsewhere (a demo)
    table = [list(r) for r in out["table_df"]]
    table[0][3] = "stale"
    out = s(tab.save_edits, table_df=table)
    assert "not saved" in out["status_md"] and drafts.load_draft(visitor)[200] == example(5200)
    assert keys(out)[0] == "201" and out["table_df"][0][2] == "question 5200"


def test_a_row_added_and_a_row_removed_in_the_grid_of_a_page() -> None:
    visitor = visitor_with(500)
    s = Session(visitor)
    out = s(pages.jump_to_row, jump_box=250)
    table = [list(r) for r in out["table_df"]]
    table.insert(1, ["", "", "new question", "new answer", "", ""])  # after row 250
    del table[3]  # row 252
    s(tab.save_edits, table_df=table)
    saved = drafts.load_draft(visitor)
    assert saved[249] == example(249) and saved[250]["messages"][0]["content"] == "new question"
    assert saved[251] == example(250) and saved[252] == example(252) and len(saved) == 500


def test_add_row_shows_the_last_page_with_the_new_row() -> None:
    visitor = visitor_with(450)
    s = Session(visitor)
    s(pages.filter_rows, filter_dd=paging.ERRORS)
    out = s(tab.add_row)
    assert keys(out)[-1] == "451" and out["filter_dd"] == paging.ALL


def test_streamed_reading_gives_the_same_examples_as_reading_whole(tmp_path) -> None:
    visitor = "stream-" + secrets.token_hex(6)
    odd = [{"messages": [{"role": "user", "content": "a\u2028b\u2029c\rd"}, {"role": "assistant", "content": "é"}]},
           *[example(i) for i in range(50)]]
    path = drafts.draft_path(visitor)
    text = "".join(json.dumps(ex, ensure_ascii=False) + "\n" + ("\n  \n" if i == 3 else "") for i, ex in enumerate(odd))
    path.write_text(text, encoding="utf-8", newline="\n")
    whole = [line for line in text.split("\n") if line.strip()]  # how the draft was read before
    assert drafts.draft_lines(visitor) == whole and drafts.load_draft(visitor) == odd
    assert list(drafts.iter_draft(visitor)) == odd

    stream = drafts.iter_draft_lines(visitor)
    assert next(stream) == whole[0]
    drafts.append_to_draft(visitor, [example(99)])  # appended after the stream started: not in it
    assert [whole[0], *stream] == whole
    assert drafts.append_to_draft(visitor, [example(100)]) == 53 == len(drafts.draft_lines(visitor))


def test_export_and_dedupe_of_a_streamed_draft() -> None:
    visitor = visitor_with(300)
    drafts.append_to_draft(visitor, [example(7), example(8), example(7)])
    files, status = dops.export_draft(visitor)
    assert [f.name for f in files] == ["dataset.jsonl", "dataset.csv", "dataset.parquet"]
    assert "303 examples" in status
    for f in files:
        assert read_dataset(f).examples == drafts.load_draft(visitor), f.name
    assert dops.dedupe_draft(visitor) == 3
    assert drafts.load_draft(visitor) == [example(i) for i in range(300)]
    assert dops.undo(visitor) == "removing duplicates" and len(drafts.draft_lines(visitor)) == 303


def test_old_style_rendered_counts_still_save() -> None:
    """save_table keeps taking (examples, raw rows) drawn from the top, as API callers sent it."""
    visitor = visitor_with(20)
    rows = [[str(i + 1), "", f"question {i}", example(i)["messages"][1]["content"], "", ""] for i in range(20)]
    rows[2][3] = "edited"
    dops.save_table(visitor, rows, [20, 0])
    assert answer(visitor, 3) == "edited" and drafts.load_draft(visitor)[3:] == [example(i) for i in range(3, 20)]


def test_an_uploaded_large_file_shows_its_first_page_before_it_is_validated(tmp_path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps(example(i)) + "\n" for i in range(3_000)), encoding="utf-8")
    s = Session("pages-" + secrets.token_hex(6))
    s(tab.load_file, upload_file=str(path), append_cb=False, columns_box="", import_system_box="")
    quick, full = s.updates
    assert "Loaded 3,000 example(s)" in quick["status_md"] == full["status_md"]
    assert [r[-1] for r in quick["table_df"]] == ["…"] * PAGE and "3,000 examples" in full["summary_md"]
    small = Session(visitor_with(100))  # a small draft: one update, nothing to wait for
    small(tab.show_draft)
    assert len(small.updates) == 1
