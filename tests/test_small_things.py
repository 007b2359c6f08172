"""Issue 16's small things: the 10-example path on defaults and the snippet calling a fine-tuned model."""

from __future__ import annotations

import contextlib
import io

import pytest

from pipeline.finetune.preflight import preflight
from pipeline.finetune.snippet import usage_snippet
from pipeline.finetune.split import training_split
from tests.fakes.chat_server import FakeChatServer
from tests.test_finetune_openai import MODEL, examples

WORDS = ["apple", "river", "castle", "engine", "violin", "glacier", "pepper", "satellite", "tulip", "harbor",
         "lantern", "meteor", "walnut", "canyon", "dolphin", "saddle", "orbit", "quartz", "falcon", "bamboo"]


def distinct(n: int) -> list[dict]:
    """Examples that are not near-duplicates of each other, so each is its own group in a split."""
    return [{"messages": [{"role": "user", "content": f"Tell me about the {WORDS[i % 20]} {'and ' * (i // 20)}"
                                                     f"{WORDS[(i * 7 + 3) % 20]} please"},
                          {"role": "assistant", "content": f"{WORDS[(i * 3) % 20]} number {i}"}]}
            for i in range(n)]


def test_ten_examples_with_the_default_split_keep_ten_for_training() -> None:
    data = distinct(10)
    train, validation, note = training_split(data, 0.1, seed=42)
    assert len(train) == 10 and validation == [] and "No validation split" in note and "10" in note
    assert not preflight(train, MODEL, validation=validation).errors  # the tutorial's path now starts


def test_the_split_gives_validation_only_what_training_can_spare() -> None:
    data = distinct(12)
    train, validation, note = training_split(data, 0.5, seed=1)
    assert (len(train), len(validation)) == (10, 2) and "lowered to 2" in note
    assert train == [ex for ex in data if ex not in validation]  # original order kept
    train, validation, note = training_split(distinct(40), 0.1, seed=1)
    assert (len(train), len(validation), note) == (36, 4, None)


def test_nine_examples_still_say_what_to_change() -> None:
    train, validation, _ = training_split(examples(9), 0.1, seed=0)
    errors = preflight(train, MODEL, validation=validation).errors
    assert errors[0]["code"] == "too_few_examples" and "Add more" in errors[0]["message"]


@pytest.fixture
def chat():
    server = FakeChatServer(answers=lambda model, messages: f"{model} answered").start()
    yield server
    server.close()


def test_the_snippet_runs_against_a_compatible_endpoint(chat, monkeypatch) -> None:
    code = usage_snippet("ft:fast-a:me", kind="compatible", base_url=chat.base_url, key_env="MY_KEY")
    assert "sk-" not in code and 'os.environ["MY_KEY"]' in code
    monkeypatch.setenv("MY_KEY", "sk-anything")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "snippet", "exec"), {})  # noqa: S102 - our own generated code
    assert out.getvalue().strip() == "ft:fast-a:me answered"
    assert chat.requests[-1]["model"] == "ft:fast-a:me"


def test_snippets_for_openai_azure_and_the_local_backend_compile() -> None:
    hosted = usage_snippet("ft:gpt-4o-mini:o:x:1", kind="openai", base_url="https://api.openai.com/v1/")
    assert "base_url" not in hosted and 'os.environ["OPENAI_API_KEY"]' in hosted
    azure = usage_snippet("m", kind="azure", base_url="https://x.openai.azure.com", api_version="2024-10-21")
    assert "AzureOpenAI(azure_endpoint=" in azure and "2024-10-21" in azure
    local = usage_snippet("ft:local:x", kind="local", base_url="http://127.0.0.1:1/v1")
    assert "ensure_local_backend().client()" in local
    for code in (hosted, azure, local):
        compile(code, "snippet", "exec")


def test_pasted_curly_quotes_get_a_hint(tmp_path) -> None:
    from pipeline.dataset import read_dataset
    from pipeline.dataset.editing import _parse_into
    from pipeline.dataset.hints import json_paste_hint

    good = '{"messages": [{"role": "user", "content": "He said \u201chi\u201d"}, {"role": "assistant", "content": "ok"}]}'
    curly = "{\u201cmessages\u201d: [{\u201crole\u201d: \u201cuser\u201d, \u201ccontent\u201d: \u201chi\u201d}]}"
    broken_elsewhere = '{"messages": [{"role": "user", "content": "He said \u201chi\u201d"}'  # missing ]}
    path = tmp_path / "pasted.jsonl"
    path.write_text("\n".join([good, curly, broken_elsewhere]) + "\n", encoding="utf-8")
    read = read_dataset(path)
    messages = {p.line: p.message for p in read.problems if p.code == "invalid_json"}
    assert set(messages) == {2, 3} and len(read.examples) == 1
    assert "Curly quotes: replace \u201c \u201d" in messages[2] and "straight quotes" in messages[2]
    assert "Curly quotes" not in messages[3]  # quotes inside a string are not why this line fails
    unparsed: list = []
    _parse_into(curly, [], unparsed, base_line=4)  # an edited json cell in the Dataset tab
    assert "Curly quotes" in unparsed[0].message
    assert json_paste_hint("{\u2018role\u2019: \u2018user\u2019}")  # single curly quotes around keys
    assert json_paste_hint("not json at all") == ""


def test_the_empty_dataset_tab_says_what_to_do_first() -> None:
    from components import dataset as tab

    shown = tab.validate_dataset("v" + "0" * 16, "gpt-4o-mini-2024-07-18", None)  # a visitor with no draft
    summary = shown["summary_md"]
    assert "Only 0" not in summary and "error" not in summary
    assert "Load sample" in summary and "upload" in summary and "Generate" in summary
    # No chart to draw (and no plotly figure built, see tests/test_cold_start.py): the greeting says it all.
    assert shown["hist_plot"] is None and shown["table_df"] == []
