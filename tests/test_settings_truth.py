"""Settings are the single source of truth (issue 19): pickers follow them, defaults are the roles',
a refresh keeps them, and a reply to a first click never undoes a second."""

from __future__ import annotations

import secrets

import pytest

from components import finetune_actions as act
from components import settings_handlers as h
from pipeline import drafts, endpoint_edit
from pipeline.endpoints import SessionSettings, role, with_role
from pipeline.settings_view import status_line
from tests.fakes.openai_ft_stub import OpenAIFineTuneStub
from tests.test_finetune_openai import examples

BASE = "gpt-4o-mini-2024-07-18"


@pytest.fixture
def stub():
    server = OpenAIFineTuneStub()
    yield server
    server.close()


def typed(stub: OpenAIFineTuneStub) -> SessionSettings:
    """What a visitor does in Settings: + New endpoint, base URL, key; Save (capabilities as offered)."""
    return endpoint_edit.save_endpoint(SessionSettings(), name="myopenai", kind="compatible",
                                       base_url=stub.base_url, key=stub.api_key)


def test_fine_tune_pickers_list_the_visitors_endpoints_now_and_follow_the_base_role(stub) -> None:
    settings = typed(stub)
    out = act.follow_settings(settings, "local", None)
    assert [value for _, value in out["endpoint_dd"].choices] == ["local", "openai", "myopenai"]
    settings = with_role(settings, "base", "myopenai", BASE)
    out = act.follow_settings(settings, "local", out["base_seen"])
    assert out["endpoint_dd"].value == "myopenai" and out["model_dd"].value == BASE
    # An unrelated change (budgets) leaves a pick made in the tab alone.
    again = act.follow_settings(endpoint_edit.set_budgets(settings, 3, 4), "local", out["base_seen"])
    assert again["endpoint_dd"].value == "local" and "model_dd" not in again
    # The model list of the endpoint keeps the base role's model, not the first one the server lists.
    assert act.list_base_models(settings, "myopenai", None)["model_dd"].value == BASE
    assert act.default_endpoint(settings) == "myopenai"


def test_the_visitors_confirmation_threshold_is_the_one_asked(stub) -> None:
    visitor = "v" + secrets.token_hex(8)
    drafts.save_draft(visitor, examples(20))
    settings = endpoint_edit.set_budgets(typed(stub), 5, 0)  # ask before any paid fine-tune
    out = act.start_run(settings, visitor, None, act.SOURCES[0], None, 0.1, "myopenai", BASE,
                        "auto", "auto", "auto", None, "t")
    assert out["confirm_row"].visible and "$0.00 threshold" in out["confirm_md"]


def test_a_refresh_finds_the_sessions_settings_keys_included(stub) -> None:
    visitor = "v" + secrets.token_hex(8)
    settings = with_role(typed(stub), "teacher", "myopenai", "gpt-4o")
    h.keep_settings(settings, visitor)  # what every settings change does
    restored = h.restore_settings(SessionSettings(), None, visitor)  # the page load after a refresh
    assert restored.typed_keys == {"myopenai": stub.api_key} and role(restored, "teacher").model == "gpt-4o"
    assert h.restore_settings(SessionSettings(), None, "v" + secrets.token_hex(8)).custom_endpoints == {}


def test_the_reply_to_a_first_click_does_not_untick_a_second() -> None:
    first = h.set_remember(SessionSettings(), True, False)  # "Remember my endpoints" ticked...
    assert "remember_keys_chk" not in first  # ...its reply leaves "…and their keys" as the page has it
    second = h.set_remember(first["settings"], True, True)
    assert second["settings"].remember_keys
    assert h.set_remember(SessionSettings(), False, True)["remember_keys_chk"] is False  # keys need endpoints


def test_the_header_names_the_endpoint_the_roles_use(stub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = with_role(typed(stub), "teacher", "myopenai", "gpt-4o")
    line = status_line(settings)
    assert "No OpenAI key" not in line and "'myopenai' key: typed (this session)" in line


def test_the_judge_defaults_to_the_visitors_teacher() -> None:
    settings = endpoint_edit.save_endpoint(SessionSettings(), name="mine", kind="compatible",
                                           base_url="http://127.0.0.1:9/v1", key="k")
    settings = with_role(settings, "teacher", "mine", "big-model")
    assert (role(settings, "judge").endpoint, role(settings, "judge").model) == ("mine", "big-model")


def test_saving_roles_leaves_untouched_defaults_following(stub) -> None:
    """Saving teacher and base must not pin the fine-tuned role to the local model it showed."""
    settings = typed(stub)
    shown = {r: role(settings, r) for r in ("teacher", "base", "fine_tuned", "judge")}
    out = h.save_roles_clicked(settings, "myopenai", "gpt-4o", "myopenai", BASE,
                               shown["fine_tuned"].endpoint, shown["fine_tuned"].model,
                               shown["judge"].endpoint, shown["judge"].model)["settings"]
    assert set(out.roles) == {"teacher", "base"}
    assert (role(out, "fine_tuned").endpoint, role(out, "fine_tuned").model) == ("myopenai", BASE)
    assert role(out, "judge").model == "gpt-4o"  # follows the visitor's teacher


def test_generate_lists_the_visitors_endpoints_now(stub) -> None:
    from components.generate import ROLE_DEFAULT, follow_settings

    out = follow_settings("removed-one", typed(stub))["endpoint_dd"]
    assert out["choices"] == [ROLE_DEFAULT, "local", "openai", "myopenai"] and out["value"] == ROLE_DEFAULT
    assert follow_settings("myopenai", typed(stub))["endpoint_dd"]["value"] == "myopenai"


def test_the_built_in_openai_endpoint_says_where_another_base_url_goes() -> None:
    out = h.show_endpoint(SessionSettings(), "openai")
    assert out["url_box"]["interactive"] is False and "+ New endpoint" in out["result_md"]
    assert h.show_endpoint(SessionSettings(), h.NEW)["result_md"] == ""
