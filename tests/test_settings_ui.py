"""The Settings tab through gradio_client: a full session never lets a typed key reach disk, logs or
any API output, and two concurrent sessions never see each other's keys, endpoints or models."""

from __future__ import annotations

import io
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client

from tests.browser_support import free_port
from tests.fakes.openai_stub import OpenAIStub

NEW = "+ New endpoint"


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    import app

    demo = app.build_app()
    port = free_port()
    demo.queue(default_concurrency_limit=8).launch(server_name="127.0.0.1", server_port=port,
                                                   prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def _roles(endpoint: str, model: str) -> list[str]:
    return [endpoint, model] * 4


def _files_containing(root: Path, needles: list[str]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path}: {n[:6]}…" for n in needles if n.encode() in data]
    return hits


def test_a_typed_key_reaches_no_disk_no_log_and_no_api_output(app_url, monkeypatch, capfd) -> None:
    typed = {"endpoint": f"sk-ep-{secrets.token_hex(12)}", "openai": f"sk-oa-{secrets.token_hex(12)}",
             "hf": f"hf_{secrets.token_hex(12)}", "header": f"hv-{secrets.token_hex(12)}",
             "refused": f"sk-bad-{secrets.token_hex(12)}"}
    keys = list(typed.values())
    log_text = io.StringIO()
    handler = logging.StreamHandler(log_text)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # the strictest case: every library's debug lines too
    outputs: list[object] = []
    try:
        with OpenAIStub({typed["endpoint"]: ["a-model", "b-model"]}) as stub:
            # The built-in OpenAI endpoint goes to the stand-in, which refuses the typed key (401).
            monkeypatch.setenv("OPENAI_BASE_URL", stub.url("unauthorized"))
            client = Client(app_url, verbose=False)
            call = lambda *args, api: outputs.append(client.predict(*args, api_name=api))  # noqa: E731
            call(NEW, "mine", "compatible", stub.url(), typed["endpoint"], "", "",
                 f"X-Extra: {typed['header']}", ["chat", "model_listing"], False, api="/save_endpoint")
            call("mine", api="/show_endpoint")
            call("mine", "", api="/test_connection")
            call("mine", "a-model", api="/test_connection")
            call("mine", "", api="/models_for_teacher")
            call(*_roles("mine", "a-model"), api="/refresh_models")
            call(*_roles("mine", "b-model"), api="/save_roles")
            call("openai", "", "openai", "", typed["openai"], "", "", "", [], False, api="/save_endpoint")
            call("openai", "", api="/test_connection")
            call("openai", "", api="/models_for_base")  # a failed listing, logged
            call(typed["hf"], False, api="/save_hf_token")
            call(7, 1.5, api="/save_budgets")
            call(True, False, api="/set_remember")
            call("visitor-0123456789", api="/show_settings")
            call(api="/status")
            with pytest.raises(Exception) as refused:  # a bad form: the error must not echo the key
                client.predict(NEW, "bad", "compatible", "not a url", typed["refused"], "", "", "", [],
                               False, api_name="/save_endpoint")
            outputs.append(str(refused.value))
            call(api="/reset_roles")
            call("mine", api="/remove_endpoint")
            assert stub.seen_keys.count(typed["endpoint"]) >= 3, "the typed key was really used"
            assert typed["openai"] in stub.seen_keys
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    everything = repr(outputs)
    assert "Invalid key" in everything and "b-model" in everything, "the session did what it claims"
    assert [k[:6] for k in keys if k in everything] == []
    captured = capfd.readouterr()
    for name, text in (("logs", log_text.getvalue()), ("stdout", captured.out), ("stderr", captured.err)):
        assert [k[:6] for k in keys if k in text] == [], f"a key reached {name}"
    places = [Path(os.environ["DISTILL_HOME"]), Path(tempfile.gettempdir()) / "gradio"]
    assert [hit for place in places if place.exists() for hit in _files_containing(place, keys)] == []


def test_two_concurrent_sessions_never_see_each_other(app_url) -> None:
    sessions = {"a": f"sk-a-{secrets.token_hex(10)}", "b": f"sk-b-{secrets.token_hex(10)}"}
    seen: dict[str, list[object]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2, timeout=120)

    def visit(who: str, stub: OpenAIStub) -> None:
        try:
            client = Client(app_url, verbose=False)
            out = seen.setdefault(who, [])
            # Same endpoint name in both sessions, different keys; plus one only this session has.
            out.append(client.predict(NEW, "shared", "compatible", stub.url(), sessions[who], "", "", "",
                                      ["chat", "model_listing"], False, api_name="/save_endpoint"))
            out.append(client.predict(NEW, f"only-{who}", "compatible", stub.url(), "", "", "", "",
                                      ["chat"], False, api_name="/save_endpoint"))
            barrier.wait()
            out.append(client.predict("shared", "", api_name="/models_for_teacher"))
            out.append(client.predict(*_roles("shared", f"model-{who}"), api_name="/save_roles"))
            barrier.wait()
            out.append(client.predict("shared", "", api_name="/test_connection"))
            out.append(client.predict("visitor-0123456789", api_name="/show_settings"))
            out.append(client.predict(api_name="/status"))
        except BaseException as exc:  # re-raised in the main thread below
            errors.append(exc)
            barrier.abort()

    with OpenAIStub({sessions["a"]: ["model-a"], sessions["b"]: ["model-b"]}) as stub:
        threads = [threading.Thread(target=visit, args=(who, stub)) for who in sessions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    assert errors == []
    for who, other in (("a", "b"), ("b", "a")):
        text = repr(seen[who])
        assert f"model-{who}" in text and f"only-{who}" in text, "each session sees its own"
        assert f"model-{other}" not in text and f"only-{other}" not in text
        assert sessions[who] not in text and sessions[other] not in text, "no key in any output"
        assert f"**Teacher** shared · `model-{who}`" in seen[who][-1]
