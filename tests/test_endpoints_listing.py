"""Model lists and connection tests against a real HTTP stand-in: every failure path in words, the
last good list kept, the cache per session, and no key in any message."""

from __future__ import annotations

import pytest

from pipeline import endpoint_edit, model_lists
from pipeline.endpoints import SessionSettings
from pipeline.model_lists import list_models
from tests.fakes.openai_stub import OpenAIStub

KEY = "sk-listing-secret-zqxw"


@pytest.fixture
def stub():
    with OpenAIStub({KEY: ["gpt-b", "gpt-a", "text-embedding-3-small"]}) as server:
        yield server


def _settings(url: str, **kw) -> SessionSettings:
    return endpoint_edit.save_endpoint(SessionSettings(), name="ep", kind="compatible", base_url=url,
                                       key=KEY, **kw)


def test_lists_models_sorted_and_caches_them_per_session(stub) -> None:
    settings = _settings(stub.url())
    listed = list_models(settings, "ep")
    assert listed.models == ["gpt-a", "gpt-b", "text-embedding-3-small"]
    assert listed.error is None and listed.fetched_at is not None
    assert model_lists.chat_models(listed.models) == ["gpt-a", "gpt-b"]
    calls = len(stub.seen_keys)
    assert list_models(settings, "ep") is listed and len(stub.seen_keys) == calls, "served from the cache"
    assert list_models(settings, "ep", refresh=True).models == listed.models
    assert len(stub.seen_keys) == calls + 1
    assert "No API key" in list_models(SessionSettings(), "openai").error, "another session: no cache, no key"


@pytest.mark.parametrize(("behaviour", "words"), [
    ("unauthorized", "Invalid key"),
    ("garbage", "not with an OpenAI model list (got text/html)"),
    ("badshape", "not with an OpenAI model list"),
    ("ratelimit", "Rate limited"),
    ("down", "500"),
])
def test_failures_say_why_and_never_show_the_key(stub, behaviour, words) -> None:
    settings = _settings(stub.url(behaviour))
    listed = list_models(settings, "ep")
    assert listed.models == [] and listed.fetched_at is None
    assert words in listed.error
    result = model_lists.test_connection(settings, "ep")
    assert not result.ok and words in result.message
    for text in (listed.error, result.message):
        assert KEY not in text and KEY[-4:] not in text  # the 401 body echoes the key's end


def test_unreachable_url_is_network_unreachable() -> None:
    settings = _settings("http://127.0.0.1:9/v1")  # nothing listens on the discard port
    listed = list_models(settings, "ep")
    assert listed.models == [] and listed.error.startswith("Network unreachable")
    assert model_lists.test_connection(settings, "ep").message.startswith("Network unreachable")


def test_a_failed_refresh_keeps_the_last_good_list(stub) -> None:
    settings = _settings(stub.url("switch"))
    good = list_models(settings, "ep")
    assert good.error is None and good.models
    stub.healthy = False
    after = list_models(settings, "ep", refresh=True)
    assert after.models == good.models and after.fetched_at == good.fetched_at
    assert "500" in after.error
    stub.healthy = True
    assert list_models(settings, "ep", refresh=True).error is None


def test_missing_key_is_a_message_not_a_crash(stub) -> None:
    settings = endpoint_edit.save_endpoint(SessionSettings(), name="ep", kind="compatible",
                                           base_url=stub.url())
    assert "No API key for endpoint 'ep'" in list_models(settings, "ep").error
    result = model_lists.test_connection(settings, "ep")
    assert not result.ok and "Settings" in result.message
    assert stub.seen_keys == [], "nothing was sent without a key"


def test_connection_test_words_for_models(stub) -> None:
    settings = _settings(stub.url())
    ok = model_lists.test_connection(settings, "ep")
    assert ok.ok and "3 models" in ok.message
    assert model_lists.test_connection(settings, "ep", "gpt-a").ok
    missing = model_lists.test_connection(settings, "ep", "gpt-zzz")
    assert not missing.ok and missing.message.startswith("No access to model 'gpt-zzz'")
    assert not model_lists.test_connection(settings, "nowhere").ok


def test_endpoint_without_model_listing_asks_for_a_name(stub) -> None:
    settings = _settings(stub.url(), capabilities=["chat"])
    listed = list_models(settings, "ep")
    assert listed.models == [] and "type the model" in listed.error
    assert stub.seen_keys == []
    assert "Give a model" in model_lists.test_connection(settings, "ep").message


def test_header_secrets_are_scrubbed_from_provider_text(stub) -> None:
    # A provider error that echoes a header value must not show it: every known secret is redacted.
    settings = _settings(stub.url(), headers="X-Api-Token: hdr-secret-777")
    assert model_lists.redact("echo hdr-secret-777 and sk-listing-secret-zqxw", settings) == "echo *** and ***"
    list_models(settings, "ep")
    assert stub.seen_headers[-1]["x-api-token"] == "hdr-secret-777", "headers are sent"


def test_azure_endpoint_sends_api_key_header_version_and_deployment(stub) -> None:
    settings = endpoint_edit.save_endpoint(SessionSettings(), name="az", kind="azure",
                                           base_url=stub.url("azure").removesuffix("/v1"), key=KEY)
    assert settings.endpoint("az").api_version == "2024-10-21"
    assert "does not list its models" in list_models(settings, "az").error
    ok = model_lists.test_connection(settings, "az", "gpt-a")
    assert ok.ok and "'gpt-a' answered" in ok.message
    assert stub.seen_headers[-1]["api-key"] == KEY and stub.api_versions == ["2024-10-21"]
    missing = model_lists.test_connection(settings, "az", "no-deployment")
    assert not missing.ok and missing.message.startswith("No access to model 'no-deployment'")
