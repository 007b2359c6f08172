"""Public-Space behaviour: the app starts with no secrets, Sign in appears only where OAuth works,
and each visitor's data stays in their own workspace folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline import drafts, workspace
from pipeline.errors import InputError
from pipeline.finetune.records import visitor_tag
from tests.browser_support import free_port

ROOT = Path(__file__).resolve().parent.parent
OAUTH_ENV = {"SYSTEM": "spaces", "OAUTH_CLIENT_ID": "client-id", "OAUTH_CLIENT_SECRET": "client-secret",
             "OAUTH_SCOPES": "openid profile write-repos", "OPENID_PROVIDER_URL": "http://127.0.0.1:9"}


def _login_buttons(demo) -> int:
    return sum(type(b).__name__ == "LoginButton" for b in demo.blocks.values())


def test_app_py_serves_its_first_page_on_a_space_with_no_secrets(tmp_path: Path) -> None:
    """`python app.py` as a Space runs it: SPACE_ID and OAuth variables set, no API key, no HF_TOKEN."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HF_TOKEN")}
    env.update(OAUTH_ENV, SPACE_ID="someone/distill-studio", DISTILL_HOME=str(tmp_path),
               GRADIO_SERVER_PORT=str(port))
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        page = config = None
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30).read().decode()
                config = urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=30).read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert page is not None and "Distill Studio" in page
        assert config is not None and "Sign in with Hugging Face" in config  # the LoginButton
    finally:
        proc.terminate()
        proc.wait(30)


def test_sign_in_button_only_where_oauth_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    import app

    assert _login_buttons(app.build_app()) == 0  # off Spaces: a token field instead
    monkeypatch.setenv("SPACE_ID", "someone/distill-studio")
    monkeypatch.setenv("SYSTEM", "spaces")
    assert _login_buttons(app.build_app()) == 0  # a Space without hf_oauth: no button that would crash
    import gradio.oauth

    for key, value in OAUTH_ENV.items():
        monkeypatch.setenv(key, value)
        if hasattr(gradio.oauth, key):  # gradio reads these once, at import (before it on a real Space)
            monkeypatch.setattr(gradio.oauth, key, value)
    assert _login_buttons(app.build_app()) == 1


def test_visitor_ids_cannot_reach_outside_their_folder() -> None:
    for bad in ["../../etc", "a/b", "", "short", "x" * 80, "visitor id with spaces"]:
        with pytest.raises(InputError):
            workspace.visitor_dir(bad)
    a, b = "visitor-isolated-0001", "visitor-isolated-0002"
    drafts.save_draft(a, [{"messages": [{"role": "user", "content": "a"}]}])
    assert drafts.load_draft(b) == []
    assert workspace.visitor_dir(a).parent == workspace.visitor_dir(b).parent == workspace.home() / "visitors"


def test_no_module_level_state_for_visitors() -> None:
    """Per-visitor data lives in gr.State / BrowserState and visitor folders, never in module globals.

    Flags module-level mutable containers in components/ and pipeline/ (locks and __all__ are fine).
    """
    import ast

    # One lock per *file* (a visitor's draft, a visitor's job records), keyed by its path: no visitor data.
    allowed = {("pipeline/atomic.py", "_locks")}
    found = []
    for path in [*ROOT.joinpath("components").glob("*.py"), *ROOT.joinpath("pipeline").rglob("*.py")]:
        rel = str(path.relative_to(ROOT))
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            else:
                continue
            container = isinstance(value, (ast.Dict, ast.List, ast.Set)) or (
                isinstance(value, ast.Call) and getattr(value.func, "id", getattr(value.func, "attr", ""))
                in {"dict", "list", "set", "defaultdict", "OrderedDict", "deque"})
            for target in targets:
                name = getattr(target, "id", "")
                if container and name and not name.isupper() and name != "__all__" and (rel, name) not in allowed:
                    found.append(f"{rel}:{node.lineno} {name}")
    assert found == []


def _training_file(client, n: int) -> str:
    lines = "".join(json.dumps({"messages": [{"role": "user", "content": f"Q{i}"},
                                             {"role": "assistant", "content": f"A{i}"}]}) + "\n" for i in range(n))
    return client.files.create(file=("train.jsonl", lines.encode()), purpose="fine-tune").id


def test_local_training_on_a_shared_space_is_bounded_and_queued(tiny_backend, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    """The backend's limits (DISTILL_MAX_TRAIN_EXAMPLES / DISTILL_MAX_EPOCHS) and queue position, as a
    visitor's client meets them through the OpenAI SDK."""
    import openai

    client = tiny_backend.client()
    base = client.models.list().data[0].id
    monkeypatch.setenv("DISTILL_MAX_TRAIN_EXAMPLES", "12")
    monkeypatch.setenv("DISTILL_MAX_EPOCHS", "2")
    with pytest.raises(openai.BadRequestError, match="at most 12 examples"):
        client.fine_tuning.jobs.create(model=base, training_file=_training_file(client, 13))
    small = _training_file(client, 10)  # OpenAI's (and the backend's) minimum
    with pytest.raises(openai.BadRequestError, match="at most 2 epochs"):
        client.fine_tuning.jobs.create(model=base, training_file=small, hyperparameters={"n_epochs": 3})
    first = client.fine_tuning.jobs.create(model=base, training_file=small, hyperparameters={"n_epochs": 2})
    second = client.fine_tuning.jobs.create(model=base, training_file=small, hyperparameters={"n_epochs": 2})
    try:
        # The second visitor is told they wait behind the first job.
        assert (second.model_extra or {}).get("queue_position", 0) >= 1
    finally:
        for job in (second, first):
            if client.fine_tuning.jobs.retrieve(job.id).status not in ("succeeded", "failed", "cancelled"):
                client.fine_tuning.jobs.cancel(job.id)


def _succeeded_job(stub, client, tag: str | None) -> str:
    """A stub job run to completion (each retrieve moves it one tick); its fine-tuned model id."""
    upload = client.files.create(file=("t.jsonl", b'{"messages": [{"role": "user", "content": "hi"}, '
                                       b'{"role": "assistant", "content": "yo"}]}\n' * 10), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=upload.id,
                                         metadata={"distill_visitor": tag} if tag else None)
    while job.status != "succeeded":
        job = client.fine_tuning.jobs.retrieve(job.id)
    return job.fine_tuned_model


def _shared_team_endpoint(stub, monkeypatch: pytest.MonkeyPatch):
    """Settings with endpoint "team": the stub's account through a key the Space shares with every visitor."""
    from pipeline import endpoint_edit
    from pipeline.endpoints import SessionSettings

    monkeypatch.setenv("SPACE_ID", "team/distill-studio")
    monkeypatch.setenv("STUB_KEY", stub.api_key)
    monkeypatch.setenv("DISTILL_SHARED_KEY_VARS", "STUB_KEY")
    return endpoint_edit.save_endpoint(SessionSettings(), name="team", kind="compatible", base_url=stub.base_url,
                                       key_env="STUB_KEY", capabilities=["model_listing", "fine_tuning", "chat"])


def test_model_pickers_hide_other_visitors_fine_tuned_models_on_a_shared_key(monkeypatch: pytest.MonkeyPatch
                                                                             ) -> None:
    from components.settings_handlers import restore_settings
    from pipeline import endpoint_edit, model_lists
    from tests.fakes.openai_ft_stub import OpenAIFineTuneStub

    stub = OpenAIFineTuneStub()
    try:
        client = stub.client()
        mine, theirs, operators = (_succeeded_job(stub, client, tag) for tag in
                                   (visitor_tag("me"), visitor_tag("someone-else"), None))
        shared = _shared_team_endpoint(stub, monkeypatch)
        shared = restore_settings(shared, None, "me")  # what the page load does for visitor "me"
        listed = model_lists.list_models(shared, "team").models
        # Only the visitor's own: the operator's (untagged) model is refused on use (ownership), so not offered.
        assert mine in listed and operators not in listed and theirs not in listed
        assert "gpt-4o" in listed
        assert model_lists.test_connection(shared, "team").ok  # it refills the same cache...
        assert theirs not in model_lists.list_models(shared, "team").models  # ...filtered too

        # A key the visitor typed is their own account: nothing is hidden.
        own = endpoint_edit.save_endpoint(shared, name="team", original_name="team", kind="compatible",
                                          base_url=stub.base_url, key=stub.api_key,
                                          capabilities=["model_listing", "fine_tuning", "chat"])
        assert theirs in model_lists.list_models(own, "team", refresh=True).models

        # If the jobs cannot be read, no fine-tuned model is listed rather than someone else's.
        stub.script("GET", "/v1/fine_tuning/jobs", 500, {"error": {"message": "down", "type": "server_error"}})
        listed = model_lists.list_models(shared, "team", refresh=True).models
        assert "gpt-4o" in listed and not any(m.startswith("ft:") for m in listed)
    finally:
        stub.close()


def test_the_fine_tuned_role_never_defaults_to_another_visitors_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from components.settings_handlers import restore_settings
    from pipeline import model_lists
    from pipeline.endpoints import role, with_role
    from tests.fakes.openai_ft_stub import OpenAIFineTuneStub

    stub = OpenAIFineTuneStub()
    try:
        theirs = _succeeded_job(stub, stub.client(), visitor_tag("someone-else"))
        shared = _shared_team_endpoint(stub, monkeypatch)
        shared = with_role(shared, "base", "team", "gpt-4o-mini-2024-07-18")
        mine = restore_settings(shared, None, "me")
        assert model_lists.newest_fine_tuned_model(mine, refresh=True) == "gpt-4o-mini-2024-07-18"
        assert role(mine, "fine_tuned").model != theirs  # "Use role defaults" in Chat reads this

        # An API call that never ran the page load has no owner: every visitor's model is hidden from it.
        assert theirs not in model_lists.list_models(shared, "team", refresh=True).models
        assert model_lists.newest_fine_tuned_model(shared, refresh=True) == "gpt-4o-mini-2024-07-18"
    finally:
        stub.close()
