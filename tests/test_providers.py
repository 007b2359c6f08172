"""Provider rules on the endpoint kind (issue 14 item 2) and settings that only the visitor changes
(issue 19): one object per kind answers; editing an endpoint keeps its roles; new endpoints start
with what the kind supports; one confirmation threshold."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline import endpoint_edit
from pipeline.endpoints import LOCAL, SessionSettings, role, shared_endpoint, with_role
from pipeline.finetune.preflight import confirm_threshold_usd
from pipeline.local.dataset import resolved_auto_epochs
from pipeline.providers import AzureKind, CompatibleKind, EndpointKind, LocalKind, OpenAIKind

ROOT = Path(__file__).resolve().parent.parent


def _custom(settings: SessionSettings | None = None, **extra) -> SessionSettings:
    return endpoint_edit.save_endpoint(settings or SessionSettings(), name="myopenai", kind="compatible",
                                       base_url="http://127.0.0.1:9/v1", key="sk-typed-1", **extra)


def test_editing_an_endpoint_keeps_the_roles_that_use_it() -> None:
    settings = with_role(with_role(_custom(), "teacher", "myopenai", "big"), "base", "myopenai", "small")
    edited = endpoint_edit.save_endpoint(settings, name="myopenai", original_name="myopenai", kind="compatible",
                                         base_url="http://127.0.0.1:9/v1", key="sk-typed-2",
                                         capabilities=["chat", "fine_tuning"])
    assert (role(edited, "teacher").endpoint, role(edited, "teacher").model) == ("myopenai", "big")
    assert (role(edited, "base").endpoint, role(edited, "base").model) == ("myopenai", "small")
    assert edited.typed_keys["myopenai"] == "sk-typed-2"
    renamed = endpoint_edit.save_endpoint(edited, name="mine", original_name="myopenai", kind="compatible",
                                          base_url="http://127.0.0.1:9/v1")
    assert role(renamed, "teacher").endpoint == "mine" and renamed.typed_keys["mine"] == "sk-typed-2"


def test_a_new_compatible_endpoint_can_fine_tune_and_give_structured_output() -> None:
    endpoint = _custom().endpoint("myopenai")
    assert endpoint.can("fine_tuning") and endpoint.can("structured_output")


def test_one_confirmation_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    assert SessionSettings().confirm_above_usd == confirm_threshold_usd() == 5.0
    monkeypatch.setenv("DISTILL_FINETUNE_CONFIRM_USD", "12")
    assert SessionSettings().confirm_above_usd == 12.0


def test_each_kind_answers_the_rules() -> None:
    assert set(EndpointKind.registry) == {"local", "openai", "azure", "compatible"}
    assert LocalKind.auto_epochs() is resolved_auto_epochs
    assert all(k.auto_epochs() is None for k in (OpenAIKind, AzureKind, CompatibleKind))
    assert LOCAL.is_local and not _custom().endpoint("myopenai").is_local
    assert OpenAIKind.uses_openai_catalogue(None) and OpenAIKind.uses_openai_catalogue("https://api.openai.com/v1")
    assert not OpenAIKind.uses_openai_catalogue("http://127.0.0.1:8000/v1")
    assert not CompatibleKind.uses_openai_catalogue(None)
    assert "free" in LocalKind.pricing(None) and "pricing.json" in OpenAIKind.pricing(None)
    assert OpenAIKind.job_metadata("me") == {"distill_visitor": "me"} and OpenAIKind.job_metadata(None) is None


def test_job_visibility_is_the_ownership_modules_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """One rule (pipeline.ownership.may_use) for the job list, the model pickers and the checks on use."""
    from pipeline import ownership
    from pipeline.finetune.records import visitor_tag

    monkeypatch.setenv("DISTILL_MULTI_USER", "1")
    me, them = "visitor-me-" + "1" * 8, "visitor-them-" + "2" * 8
    jobs = [SimpleNamespace(id="ftjob-tagged-mine", metadata={"distill_visitor": visitor_tag(me)}),
            SimpleNamespace(id="ftjob-tagged-theirs", metadata={"distill_visitor": visitor_tag(them)}),
            SimpleNamespace(id="ftjob-cli", metadata=None),
            SimpleNamespace(id="ftjob-recorded-mine", metadata=None)]
    ownership.claim(me, "job", "ftjob-recorded-mine")
    shown = [j.id for j in OpenAIKind.visible_jobs(jobs, visitor_tag(me), shared=True)]
    expected = [j.id for j in jobs if ownership.may_use(me, "job", j.id, shared=True,
                                                        tag=(j.metadata or {}).get("distill_visitor"))]
    assert shown == expected == ["ftjob-tagged-mine", "ftjob-recorded-mine"]
    assert len(OpenAIKind.visible_jobs(jobs, visitor_tag(me), shared=False)) == 4
    assert OpenAIKind.visible_jobs(jobs, "", shared=True) == []  # no owner known: nothing


def test_one_rule_for_a_shared_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _custom()
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("DISTILL_MULTI_USER", raising=False)
    assert not shared_endpoint(settings, LOCAL)  # one person's tool
    monkeypatch.setenv("DISTILL_MULTI_USER", "1")
    assert shared_endpoint(settings, LOCAL)  # one backend for everyone
    assert not shared_endpoint(settings, settings.endpoint("myopenai"))  # their own typed key
    assert shared_endpoint(settings, settings.endpoint("openai"))  # the server's key


def test_the_fine_tune_job_list_follows_the_shared_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """The job list hid other visitors' jobs only on the local backend; a Space's shared key showed them."""
    from components import finetune_actions as act
    from pipeline.finetune.records import visitor_tag
    from tests.fakes.openai_ft_stub import OpenAIFineTuneStub
    from tests.test_spaces import _shared_team_endpoint, _succeeded_job

    stub = OpenAIFineTuneStub()
    try:
        client = stub.client()
        _succeeded_job(stub, client, visitor_tag("visitor-me-123"))
        _succeeded_job(stub, client, visitor_tag("someone-else"))
        monkeypatch.setenv("SPACE_ID", "team/distill-studio")
        shared = _shared_team_endpoint(stub, monkeypatch)
        listed = act.refresh_jobs(shared, "visitor-me-123", [], "team")["jobs_dd"].choices
        assert len(listed) == 1
    finally:
        stub.close()


def test_the_cli_asks_the_kind_for_its_auto_epochs_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.commands import cli_provider

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert cli_provider(argparse.Namespace(base_url=None, api_key=None)) is LocalKind
    assert cli_provider(argparse.Namespace(base_url=None, api_key="sk-x")) is OpenAIKind
    assert cli_provider(argparse.Namespace(base_url="http://127.0.0.1:8000/v1", api_key="k")) is CompatibleKind


def test_no_caller_imports_the_local_backend_to_learn_a_rule() -> None:
    """Rules (auto epochs, ...) come from pipeline.providers; only it and the backend's own modules
    read pipeline.local.dataset."""
    offenders = []
    for path in [*ROOT.joinpath("components").glob("*.py"), *ROOT.joinpath("pipeline").rglob("*.py")]:
        rel = str(path.relative_to(ROOT))
        if rel.startswith("pipeline/local/") or rel == "pipeline/providers.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "") == "pipeline.local.dataset":
                offenders.append(rel)
    assert offenders == []
