"""Words that agree (issue 19 item 6): the Hub card and the Dataset tab count errors from one source;
the confirmation threshold is one number everywhere."""

from __future__ import annotations

from pipeline.dataset import validate_examples
from pipeline.dataset.draft_view import summary_markdown
from pipeline.hub.stats import card_figures, split_for_push
from tests.test_finetune_openai import examples


def test_the_hub_card_counts_errors_as_the_dataset_tab_does() -> None:
    data = examples(20)
    tab = validate_examples(data)
    assert "no errors" in summary_markdown(tab)
    card = card_figures(split_for_push(data, 0.1))["validation"]
    assert card["errors"] == len(tab.errors) == 0  # the 2-example validation split alone is not "too few"
    assert card["warnings"] == len(tab.warnings) and card["examples"] == 20


def test_one_confirmation_threshold_in_settings_readme_and_cli() -> None:
    from pathlib import Path

    from pipeline.endpoints import SessionSettings
    from pipeline.finetune.preflight import DEFAULT_CONFIRM_USD

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert SessionSettings().confirm_above_usd == DEFAULT_CONFIRM_USD
    line = next(row for row in readme.splitlines() if "DISTILL_FINETUNE_CONFIRM_USD" in row)
    assert f"${DEFAULT_CONFIRM_USD:g}" in line


def test_a_hub_load_without_network_fails_at_once_saying_what_to_do(monkeypatch) -> None:
    import pytest

    from pipeline.hub.errors import HubNetworkError
    from pipeline.hub.pull import load_from_hub
    from tests.browser_support import free_port

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(HubNetworkError, match="Cannot reach the Hugging Face Hub.*Check the network"):
        load_from_hub("someone/data")
