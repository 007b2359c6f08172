"""Endpoint registry: key lookup order, role defaults, editing endpoints, browser copy, status line."""

from __future__ import annotations

import pytest

from pipeline import endpoint_edit, model_lists, settings_view
from pipeline.endpoints import (
    LOCAL_MODEL,
    ROLES,
    SessionSettings,
    default_role,
    find_hf_token,
    find_key,
    fine_tuned_stands_in,
    make_client,
    require_hf_token,
    require_key,
    role,
    with_role,
)
from pipeline.errors import InputError, MissingKeyError
from pipeline.model_lists import client_for_role
from pipeline.models import openai_fine_tunable_models
from tests.fakes.openai_stub import OpenAIStub, job


@pytest.fixture
def stub():
    with OpenAIStub({"typed-key-1": ["typed-model"], "env-key-1": ["env-model"]}) as server:
        yield server


def _custom(settings: SessionSettings, url: str, **kw) -> SessionSettings:
    return endpoint_edit.save_endpoint(settings, name="mine", kind="compatible", base_url=url, **kw)


# ---- key lookup order -------------------------------------------------------------------------

def test_typed_key_beats_environment_which_beats_nothing(monkeypatch, stub) -> None:
    settings = SessionSettings()
    openai_ep = settings.endpoint("openai")
    with pytest.raises(MissingKeyError) as missing:
        require_key(settings, openai_ep)
    assert "OPENAI_API_KEY" in str(missing.value) and "Settings" in str(missing.value)

    monkeypatch.setenv("OPENAI_API_KEY", "env-key-1")
    assert find_key(settings, openai_ep) == "env-key-1"
    typed = endpoint_edit.set_key(settings, "openai", "typed-key-1")
    assert find_key(typed, openai_ep) == "typed-key-1"
    assert find_key(settings, openai_ep) == "env-key-1", "the old settings object is unchanged"

    # The key really sent over HTTP follows the same order.
    monkeypatch.setenv("OPENAI_BASE_URL", stub.url())
    assert [m.id for m in make_client(typed, "openai").models.list().data] == ["typed-model"]
    assert [m.id for m in make_client(settings, "openai").models.list().data] == ["env-model"]
    assert stub.seen_keys == ["typed-key-1", "env-key-1"]


def test_custom_endpoint_reads_the_variable_it_names(monkeypatch, stub) -> None:
    settings = _custom(SessionSettings(), stub.url(), key_env="MY_SERVER_KEY")
    with pytest.raises(MissingKeyError, match="MY_SERVER_KEY"):
        make_client(settings, "mine")
    monkeypatch.setenv("MY_SERVER_KEY", "env-key-1")
    assert make_client(settings, "mine").models.list().data[0].id == "env-model"
    typed = endpoint_edit.set_key(settings, "mine", "typed-key-1")
    assert make_client(typed, "mine").models.list().data[0].id == "typed-model"


def test_on_a_shared_space_a_visitor_cannot_aim_the_owners_secret_at_their_url(monkeypatch, stub) -> None:
    monkeypatch.setenv("SPACE_ID", "someone/distill")
    monkeypatch.setenv("OPENAI_API_KEY", "env-key-1")
    settings = _custom(SessionSettings(), stub.url(), key_env="OPENAI_API_KEY")
    with pytest.raises(MissingKeyError, match="DISTILL_SHARED_KEY_VARS"):
        make_client(settings, "mine")
    assert stub.seen_keys == []
    monkeypatch.setenv("DISTILL_SHARED_KEY_VARS", "OPENAI_API_KEY")
    assert find_key(settings, settings.endpoint("mine")) == "env-key-1"


def test_hugging_face_token_order(monkeypatch) -> None:
    settings = SessionSettings()
    assert find_hf_token(settings) is None
    with pytest.raises(MissingKeyError, match="HF_TOKEN"):
        require_hf_token(settings)
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert find_hf_token(settings) == "hf_env"
    assert find_hf_token(endpoint_edit.set_hf_token(settings, "hf_typed")) == "hf_typed"


def test_keys_stay_out_of_repr_and_str() -> None:
    settings = endpoint_edit.set_key(SessionSettings(), "openai", "sk-secret-value-123")
    settings = endpoint_edit.set_hf_token(settings, "hf_secret_token_456")
    settings = _custom(settings, "http://127.0.0.1:1/v1", headers="api-key: header-secret-789")
    for text in (repr(settings), str(settings), repr(settings.endpoint("mine"))):
        assert "secret" not in text


# ---- roles ------------------------------------------------------------------------------------

def test_without_an_openai_key_every_role_is_local() -> None:
    settings = SessionSettings()
    assert {r: role(settings, r) for r in ROLES} == {r: default_role(settings, r) for r in ROLES}
    assert {(c.endpoint, c.model) for c in (role(settings, r) for r in ROLES)} == {("local", LOCAL_MODEL)}
    assert "No OpenAI key" in settings_view.status_line(settings)


def test_with_an_openai_key_gpt4_class_teacher_and_fine_tunable_base(monkeypatch, stub) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "env-key-1")
    monkeypatch.setenv("OPENAI_BASE_URL", stub.url())
    settings = SessionSettings()
    assert role(settings, "teacher").endpoint == "openai"
    assert role(settings, "teacher").model.startswith(("gpt-4", "gpt-5"))
    assert role(settings, "base").model in openai_fine_tunable_models()
    assert role(settings, "fine_tuned") == role(settings, "base"), "no job looked up yet: the base"
    assert not fine_tuned_stands_in(settings), "not known yet: nothing is claimed"

    stub.jobs["env-key-1"] = [job("ftjob-old", "ft:gpt-4.1-mini:org::old", finished_at=100),
                              job("ftjob-new", "ft:gpt-4.1-mini:org::new", finished_at=200),
                              job("ftjob-failed", None, status="failed", finished_at=300)]
    client, model = client_for_role(settings, "fine_tuned")
    assert model == "ft:gpt-4.1-mini:org::new"
    assert role(settings, "fine_tuned").model == model, "cached in the session for the status line"
    assert "Fine-tuned student** openai · `ft:gpt-4.1-mini:org::new`" in settings_view.status_line(settings)
    # Limited to this visitor's own jobs (a shared key lists everyone's); the answer is remembered.
    assert model_lists.newest_fine_tuned_model(settings, job_ids=["ftjob-old"]) == "ft:gpt-4.1-mini:org::old"
    assert role(settings, "fine_tuned").model == "ft:gpt-4.1-mini:org::old"
    assert model_lists.newest_fine_tuned_model(settings, job_ids=["ftjob-failed"]) == role(settings, "base").model
    # Known to have none now: the status line and the Chat tab's fine-tuned pane say the base stands in.
    assert fine_tuned_stands_in(settings)
    assert "**Fine-tuned student** none yet (the base stands in)" in settings_view.status_line(settings)
    from components.chat_panes import role_pickers

    picker = role_pickers(settings, ("base", "fine_tuned"), look_up_newest=False)[3]
    assert picker.value == role(settings, "base").model and "None yet: the base stands in" in picker.info


def test_newest_fine_tuned_falls_back_to_base_when_jobs_cannot_be_listed(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "env-key-1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens on port 9
    settings = SessionSettings()
    assert model_lists.newest_fine_tuned_model(settings) == role(settings, "base").model


def test_explicit_roles_win_and_are_checked() -> None:
    settings = with_role(SessionSettings(), "teacher", "local", "other-model")
    assert role(settings, "teacher").model == "other-model"
    with pytest.raises(Exception, match="no endpoint named"):
        with_role(settings, "teacher", "nowhere", "m")
    with pytest.raises(Exception, match="Unknown role"):
        with_role(settings, "critic", "local", "m")


# ---- editing endpoints ------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "message"), [
    ({"name": "openai"}, "built-in"),
    ({"name": "bad/name"}, "Name the endpoint"),
    ({"kind": "local"}, "Unknown endpoint kind"),
    ({"base_url": "ftp://x"}, "http"),
    ({"base_url": ""}, "needs a base URL"),
    ({"base_url": "http://user:pw@host/v1"}, "not in the URL"),
    ({"key_env": "lower-case"}, "environment variable"),
    ({"headers": "no colon here"}, "Header line 1"),
    ({"capabilities": ["telepathy"]}, "Unknown capabilities"),
])
def test_bad_endpoint_fields_are_refused_in_words(fields, message) -> None:
    args = {"name": "mine", "kind": "compatible", "base_url": "http://127.0.0.1:1/v1", **fields}
    with pytest.raises(InputError, match=message):
        endpoint_edit.save_endpoint(SessionSettings(), **args)


def test_edit_rename_keeps_key_and_roles_forget_and_remove_drop_them() -> None:
    settings = _custom(SessionSettings(), "http://127.0.0.1:1/v1", key="typed-key-1", headers="X-A: secret-h")
    settings = with_role(settings, "teacher", "mine", "m1")
    renamed = endpoint_edit.save_endpoint(settings, name="theirs", kind="compatible",
                                          base_url="http://127.0.0.1:2/v1", original_name="mine")
    assert "mine" not in renamed.endpoints()
    assert renamed.typed_keys == {"theirs": "typed-key-1"}, "an empty key box keeps the key"
    assert renamed.endpoint("theirs").default_headers == {"X-A": "secret-h"}
    assert role(renamed, "teacher").endpoint == "theirs"
    forgot = endpoint_edit.save_endpoint(renamed, name="theirs", kind="compatible",
                                         base_url="http://127.0.0.1:2/v1", original_name="theirs",
                                         forget_secrets=True)
    assert forgot.typed_keys == {} and forgot.endpoint("theirs").default_headers == {}
    removed = endpoint_edit.remove_endpoint(renamed, "theirs")
    assert "theirs" not in removed.endpoints() and removed.typed_keys == {}
    assert role(removed, "teacher").endpoint == "local"
    with pytest.raises(InputError, match="built in"):
        endpoint_edit.remove_endpoint(removed, "openai")


# ---- browser copy -----------------------------------------------------------------------------

def test_browser_copy_has_no_keys_unless_asked_and_is_checked_on_the_way_back() -> None:
    settings = _custom(SessionSettings(), "http://127.0.0.1:1/v1", key="typed-key-1", headers="X-A: hv-1")
    settings = with_role(endpoint_edit.set_key(settings, "openai", "sk-typed-2"), "teacher", "mine", "m1")
    assert settings_view.to_browser(settings) is None, "remembering is off by default"
    settings.remember = True
    stored = settings_view.to_browser(settings)
    assert "typed-key-1" not in repr(stored) and "sk-typed-2" not in repr(stored) and "hv-1" not in repr(stored)
    restored, skipped = settings_view.from_browser(SessionSettings(), stored)
    assert skipped == 0 and restored.typed_keys == {} and role(restored, "teacher").model == "m1"
    assert restored.endpoint("mine").base_url == "http://127.0.0.1:1/v1"

    settings.remember_keys = True
    stored = settings_view.to_browser(settings)
    # The browser keeps the keys sealed with the server's secret, which the page never receives.
    assert "typed-key-1" not in repr(stored) and "sk-typed-2" not in repr(stored) and "hv-1" not in repr(stored)
    restored, _ = settings_view.from_browser(SessionSettings(), stored)
    assert restored.typed_keys == {"mine": "typed-key-1", "openai": "sk-typed-2"}
    assert restored.endpoint("mine").default_headers == {"X-A": "hv-1"}
    tampered = {**stored, "sealed": stored["sealed"][:-6] + "AAAAAA"}
    restored, _ = settings_view.from_browser(SessionSettings(), tampered)
    assert restored.typed_keys == {} and role(restored, "teacher").model == "m1"  # keys lost, not the rest

    junk = {"format": 1, "endpoints": [{"name": "../x", "kind": "local"}, "nope"],
            "roles": {"teacher": ["ghost", "m"], "critic": ["local", "m"]}, "budget_usd": -5}
    restored, skipped = settings_view.from_browser(SessionSettings(), junk)
    assert skipped == 5 and list(restored.endpoints()) == ["local", "openai"] and restored.roles == {}


def test_budgets_are_checked() -> None:
    settings = endpoint_edit.set_budgets(SessionSettings(), 12.5, 3)
    assert (settings.budget_usd, settings.confirm_above_usd) == (12.5, 3.0)
    with pytest.raises(InputError, match="budget"):
        endpoint_edit.set_budgets(settings, -1, 3)


def test_status_line_warns_about_a_role_whose_endpoint_has_no_key() -> None:
    settings = with_role(_custom(SessionSettings(), "http://127.0.0.1:1/v1"), "judge", "mine", "m1")
    line = settings_view.status_line(settings)
    assert "**Judge** mine · `m1`" in line and "'mine' has no key" in line
