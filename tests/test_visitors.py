"""Two visitors on one shared app: each sees and acts on only their own work, decided on the server.

Through gradio_client, as a hostile visitor would call the app: forged job ids (someone else's,
put in the `recent` list the browser sends or picked directly) and forged visitor ids (unsigned,
tampered, someone else's raw id).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components import finetune_actions as act
from components.visitor import assign_visitor
from pipeline import model_lists, ownership
from pipeline.endpoints import SessionSettings
from pipeline.errors import InputError
from pipeline.finetune.records import known_jobs, recorded_jobs
from tests.browser_support import free_port
from tests.fakes.openai_ft_stub import OpenAIFineTuneStub
from tests.test_finetune_openai import MODEL, examples


@pytest.fixture(autouse=True)
def own_workspace(tmp_path, monkeypatch):
    """A fresh workspace per test: each stub numbers its jobs from 1, and the ownership record is
    per workspace (a job id claimed by an earlier test's visitor would stay theirs)."""
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))


@pytest.fixture
def stub():
    server = OpenAIFineTuneStub()
    yield server
    server.close()


@pytest.fixture
def shared_app(stub, monkeypatch, tmp_path):
    """The app with the server's own OpenAI key (every visitor's jobs on one account), reachable by
    several people (DISTILL_MULTI_USER=1); calling it returns a new gradio_client (a new browser)."""
    from gradio_client import Client

    import app

    monkeypatch.setenv("OPENAI_API_KEY", stub.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
    monkeypatch.setenv("DISTILL_MULTI_USER", "1")
    demo = app.build_app()
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    try:
        yield lambda: Client(demo.local_url, verbose=False)
    finally:
        demo.close()


def _train_file(tmp_path: Path) -> str:
    from gradio_client import handle_file

    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(e) + "\n" for e in examples(16)), encoding="utf-8")
    return handle_file(str(train))


def _start(client, token: str, tmp_path: Path) -> None:
    client.predict(token, [], act.SOURCES[1], _train_file(tmp_path), 0.25, "openai", MODEL, "auto",
                   "auto", "auto", None, "mine", api_name="/finetune_start")


def _listed(client, token: str, recent: list) -> list[str]:
    """The job ids the app lists for this visitor (the dropdown's choices)."""
    from gradio_client import Client

    assert isinstance(client, Client)
    job = client.submit(token, recent, "openai", api_name="/finetune_jobs")
    job.result()
    update = job.outputs()[-1]
    return [c[1] if isinstance(c, (list, tuple)) else c for c in (update or {}).get("choices", [])] \
        if isinstance(update, dict) else ([update] if update else [])


def _status(stub, job_id: str) -> str:
    return stub.client().fine_tuning.jobs.retrieve(job_id).status


REFUSED = "of yours|not in the list of choices"  # our check, or gradio's for an id never listed


def test_a_visitor_cannot_list_watch_or_cancel_anothers_job(shared_app, stub, tmp_path) -> None:
    a_token, b_token = ownership.mint_visitor(), ownership.mint_visitor()
    a = ownership.verify_visitor(a_token)
    a_browser, b_browser = shared_app(), shared_app()
    _start(a_browser, a_token, tmp_path)
    a_job = recorded_jobs(a)[0]["job_id"]
    forged_recent = [{"job_id": a_job, "endpoint": "openai"}]

    assert a_job in _listed(a_browser, a_token, [])  # A finds their job with no browser list at all
    # B sends A's job id in the browser's list: it is not B's, so it is not listed...
    assert a_job not in _listed(b_browser, b_token, forged_recent)
    # ...nor can B open (watch) it by id...
    with pytest.raises(Exception, match=REFUSED):
        b_browser.predict(b_token, forged_recent, "openai", a_job, api_name="/finetune_open")
    # ...and with nothing of theirs watched, B's cancel reaches no job.
    with pytest.raises(Exception, match="No job is being watched"):
        b_browser.predict(b_token, api_name="/finetune_cancel")
    assert _status(stub, a_job) != "cancelled"
    # The handlers themselves refuse it too, whatever list a client got it into.
    b = ownership.verify_visitor(b_token)
    settings = SessionSettings()
    for handler_call in (lambda: act.open_job(settings, b, forged_recent, "openai", a_job),
                         lambda: act.follow_jobs(settings, b, forged_recent, "openai", None, False),
                         lambda: act.cancel_run(settings, b, {"job_id": a_job, "endpoint": "openai"})):
        with pytest.raises(InputError, match="of yours"):
            handler_call()
    assert _status(stub, a_job) != "cancelled"
    act.open_job(settings, a, [], "openai", a_job)  # its maker may


def test_forged_visitor_ids_are_no_one(shared_app, stub, tmp_path) -> None:
    a_token = ownership.mint_visitor()
    a = ownership.verify_visitor(a_token)
    browser = shared_app()
    _start(browser, a_token, tmp_path)
    a_job = recorded_jobs(a)[0]["job_id"]
    other = ownership.verify_visitor(ownership.mint_visitor())
    forged = [a,  # A's raw id, unsigned (what any 8+ character string used to be)
              f"{a}.{'A' * 32}",  # A's id with a made-up signature
              f"{other}.{a_token.split('.')[1]}",  # another id under A's signature
              "visitor-chosen-by-the-client"]
    for token in forged:
        assert ownership.verify_visitor(token) is None
        b_browser = shared_app()
        with pytest.raises(Exception, match="reload the page"):  # no job for no one
            _start(b_browser, token, tmp_path)
        assert a_job not in _listed(b_browser, token, [])
        with pytest.raises(Exception, match=REFUSED):
            b_browser.predict(token, [], "openai", a_job, api_name="/finetune_open")
        with pytest.raises(InputError, match="of yours"):
            act.open_job(SessionSettings(), ownership.verify_visitor(token), [], "openai", a_job)
    assert a_job in _listed(browser, a_token, [])


def test_signed_ids_cannot_be_chosen_and_accounts_follow_their_owner(monkeypatch) -> None:
    token = ownership.mint_visitor()
    visitor = ownership.verify_visitor(token)
    assert visitor and token != ownership.mint_visitor()
    assert assign_visitor(token) == token  # a returning browser keeps its id
    assert assign_visitor("visitor-chosen-by-the-client") != "visitor-chosen-by-the-client"
    assert ownership.verify_visitor(assign_visitor("visitor-chosen-by-the-client"))
    # Signed in: the account's id, the same in any browser, whatever that browser held before.
    signed_in = assign_visitor(token, {"sub": "65a1", "preferred_username": "ada"})
    assert signed_in == assign_visitor(None, {"sub": "65a1"}) and ownership.is_account(
        ownership.verify_visitor(signed_in))
    assert "ada" not in signed_in and "65a1" not in signed_in
    # Signed out: the browser no longer carries the account's id.
    assert not ownership.is_account(ownership.verify_visitor(assign_visitor(signed_in)))
    # Another server's signature (another secret) is no one here.
    monkeypatch.setenv("DISTILL_SECRET_KEY", "another-server")
    assert ownership.verify_visitor(token) is None


@pytest.mark.parametrize("env, shared", [({"SPACE_ID": "a/b"}, True), ({"GRADIO_SERVER_NAME": "0.0.0.0"}, True),
                                         ({"GRADIO_SHARE": "true"}, True), ({"DISTILL_MULTI_USER": "1"}, True),
                                         ({"GRADIO_SERVER_NAME": "127.0.0.1"}, False), ({}, False)])
def test_multi_user_wherever_more_than_one_person_can_reach_the_app(monkeypatch, env, shared) -> None:
    for var in ("SPACE_ID", "GRADIO_SERVER_NAME", "GRADIO_SHARE", "DISTILL_MULTI_USER"):
        monkeypatch.delenv(var, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert ownership.multi_user() is shared


def _cli_and_visitor_jobs(stub) -> tuple[str, str, str]:
    """A job made by the CLI (no visitor), one by visitor A; returns (cli job, A's job, A's id)."""
    from pipeline.finetune.session import start_job

    a = ownership.verify_visitor(ownership.mint_visitor())
    client = stub.client()
    cli = start_job(client, examples(12), MODEL, confirmed=True).job.id
    started = start_job(client, examples(12), MODEL, confirmed=True)
    from pipeline.finetune.records import claim_started

    claim_started(a, started)
    return cli, started.job.id, a


def test_localhost_is_one_users_tool_and_a_shared_app_is_not(stub, monkeypatch) -> None:
    cli, a_job, a = _cli_and_visitor_jobs(stub)
    b = ownership.verify_visitor(ownership.mint_visitor())
    client = stub.client()
    # On localhost the one user sees everything, the CLI's jobs included.
    assert {cli, a_job} <= {r["job_id"] for r in known_jobs(client, "stub", b, None, shared=True)}
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")  # now the whole network can reach the app
    assert {r["job_id"] for r in known_jobs(client, "stub", a, None, shared=True)} == {a_job}
    assert [r["job_id"] for r in known_jobs(client, "stub", b, None, shared=True)] == []
    # A visitor's own key is their own account: nothing is hidden there.
    assert {cli, a_job} <= {r["job_id"] for r in known_jobs(client, "stub", b, None, shared=False)}


def test_a_fine_tuned_model_is_its_makers_only(stub, monkeypatch) -> None:
    """Chat and Evaluate get model ids from the client: another visitor's fine-tuned model (or the
    operator's) is refused on a shared endpoint even when typed in by hand."""
    monkeypatch.setenv("OPENAI_API_KEY", stub.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
    monkeypatch.setenv("DISTILL_MULTI_USER", "1")
    _, a_job, a = _cli_and_visitor_jobs(stub)
    client = stub.client()
    job = client.fine_tuning.jobs.retrieve(a_job)
    while job.status != "succeeded":
        job = client.fine_tuning.jobs.retrieve(a_job)
    b = ownership.verify_visitor(ownership.mint_visitor())
    settings = SessionSettings()
    # A has never watched the job to its end: the model is still found to be theirs.
    model_lists.check_model_use(settings, a, "openai", job.fine_tuned_model)
    model_lists.check_model_use(settings, a, "openai", job.fine_tuned_model + ":ckpt-step-4")
    for visitor in (b, None):
        with pytest.raises(InputError, match="of yours"):
            model_lists.check_model_use(settings, visitor, "openai", job.fine_tuned_model)
    model_lists.check_model_use(settings, b, "openai", MODEL)  # base models are everyone's
    monkeypatch.delenv("DISTILL_MULTI_USER")
    model_lists.check_model_use(settings, b, "openai", job.fine_tuned_model)  # one user: theirs too


def test_sealed_values_only_the_server_can_read(monkeypatch) -> None:
    sealed = ownership.seal("sk-secret-key-1234")
    assert "sk-secret" not in sealed and ownership.unseal(sealed) == "sk-secret-key-1234"
    assert ownership.unseal(sealed[:-4] + "AAAA") is None and ownership.unseal(42) is None
    monkeypatch.setenv("DISTILL_SECRET_KEY", "another-server")
    assert ownership.unseal(sealed) is None



def test_the_page_never_receives_the_servers_secret() -> None:
    import app

    config = json.dumps(app.build_app().get_config_file(), default=str)
    ownership.mint_visitor()  # the secret exists by now
    secret = (Path(ownership.workspace.home()) / ".server_secret").read_text(encoding="utf-8").strip()
    assert secret and secret not in config
