"""Hub push/pull: huggingface_hub's and datasets' real client code against a local stand-in for the Hub.

The stand-in (tests/fakes/hub_server.py) answers the endpoints a push and a pull call. Xet storage
is not emulated, so uploads run the LFS path (HF_HUB_DISABLE_XET); see that module's docstring.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from components.errors import shown_errors
from components.wiring import wire
from pipeline import drafts
from pipeline.dataset import draft_ops
from pipeline.dataset.jsonl import Unparsed
from pipeline.endpoints import SessionSettings
from pipeline.errors import InputError, MissingKeyError
from pipeline.hub import auth
from pipeline.hub.card import build_card
from pipeline.hub.errors import HubAuthError, HubConflictError, HubError, HubNetworkError
from pipeline.hub.pull import load_from_hub
from pipeline.hub.push import push_dataset
from tests.fakes.hub_server import FakeHub, validate_card_yaml

ROOT = Path(__file__).resolve().parent.parent
TOKENS = {"tok-alice": {"name": "alice", "orgs": ["team"]}, "tok-bob": {"name": "bob"},
          "tok-alice-read": {"name": "alice", "role": "read"}}
GENERATION = [{"template": "riddles", "teacher": "gpt-4o", "params": {"n": 20, "temperature": 0.7},
               "counts": {"ok": 20, "failed": 1}, "cost": {"usd": 0.1234}}]


def examples(n: int, tag: str = "q") -> list[dict]:
    return [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"{tag}{i}?"},
                          {"role": "assistant", "content": f"Final answer: {i}"}]} for i in range(n)]


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch):
    import huggingface_hub.constants as hf_constants
    import huggingface_hub.utils._http as hf_http

    with FakeHub(TOKENS) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        # Read once at import by huggingface_hub; conftest sets HF_HUB_OFFLINE=1 for every other test.
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
        # http_backoff's waits between retries (1, 2, 4, 8 s) only slow the failure tests down.
        monkeypatch.setattr(hf_http, "time", types.SimpleNamespace(sleep=lambda _s: None, time=time.time))
        yield server


def requests_of(server: FakeHub, needle: str) -> list[tuple[str, str]]:
    return [r for r in server.requests if needle in r[1]]


# ---- push --------------------------------------------------------------------------------------
def test_push_uploads_parquet_splits_and_a_card_the_hub_accepts(hub: FakeHub) -> None:
    train, val = examples(18), examples(2, "v")
    train[0]["messages"][2]["weight"] = 0  # an extra key survives the round trip
    card_info = {"generation": GENERATION, "token_stats": {"train": {"examples": 18, "total": 900, "mean": 50.0,
                                                                     "min": 40, "max": 60, "encoding": "o200k_base"}},
                 "benchmarks": [{"model": "ft:small", "benchmark": "riddles", "score": 0.75, "n": 12}]}
    result = push_dataset({"train": train, "validation": val}, "distilled", token="tok-alice",
                          commit_message="First push", card_info=card_info)

    assert result.repo_id == "alice/distilled" and result.created and result.private is True
    repo = hub.repos["alice/distilled"]
    assert repo.private and repo.commits[-1]["summary"] == "First push"
    assert {"data/train-00000-of-00001.parquet", "data/validation-00000-of-00001.parquet", "README.md"} <= set(repo.files)
    assert "data/train-00000-of-00001.parquet" in repo.lfs  # went through LFS batch + PUT
    assert requests_of(hub, "/lfs-upload/") and requests_of(hub, "/info/lfs/objects/batch")
    rows = pq.read_table(io.BytesIO(repo.files["data/train-00000-of-00001.parquet"])).to_pylist()
    assert len(rows) == 18 and rows[1]["messages"][1] == {"role": "user", "content": "q1?", "weight": None}
    assert rows[0]["messages"][2]["weight"] == 0
    assert pq.read_table(io.BytesIO(repo.files["data/validation-00000-of-00001.parquet"])).num_rows == 2

    card = repo.files["README.md"].decode()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["license"] == "apache-2.0" and "synthetic" in meta["tags"]
    assert meta["size_categories"] == ["n<1K"] and meta["task_categories"] == ["text-generation"]
    assert meta["configs"] == [{"config_name": "default", "data_files": [
        {"split": "train", "path": "data/train-*"}, {"split": "validation", "path": "data/validation-*"}]}]
    assert validate_card_yaml(card) == []
    for text in ("gpt-4o", "riddles", "temperature=0.7", "$0.1234", "o200k_base", "75.0%", "18 train, 2 validation"):
        assert text in card, text


def test_pushing_again_updates_the_repo_and_drops_a_stale_split(hub: FakeHub) -> None:
    push_dataset({"train": examples(5), "validation": examples(1)}, "alice/ds", token="tok-alice")
    again = push_dataset({"train": examples(7)}, "alice/ds", token="tok-alice", private=False)
    repo = hub.repos["alice/ds"]
    assert not again.created and again.deleted == ["data/validation-00000-of-00001.parquet"]
    assert "data/validation-00000-of-00001.parquet" not in repo.files
    assert pq.read_table(io.BytesIO(repo.files["data/train-00000-of-00001.parquet"])).num_rows == 7
    assert len(repo.commits) == 3 and again.private is True  # an existing repo keeps its visibility


def test_card_reports_the_generate_tabs_provenance_record() -> None:
    """The shape pipeline.generate.plan.provenance writes into the draft's meta."""
    run = {"template": "reasoning", "teacher": "gpt-4o", "endpoint": "openai",
           "params": {"n": 50, "temperature": 0.8, "seed": None, "check_model": None},
           "counts": {"requested": 50, "written": 48, "failed_parse": 2}, "cost_usd": 1.5, "added_to_draft": 48}
    card = str(build_card(repo_id="a/b", splits={"train": 48}, generation=[run, {**run, "cost_usd": 0.25}]))
    assert "| gpt-4o | reasoning | n=50, temperature=0.8 | requested=50, written=48, failed_parse=2 | $1.5000 |" in card
    assert "Generation cost in total: $1.7500." in card and "None" not in card


def test_card_metadata_round_trips_through_huggingface_hub_and_datasets() -> None:
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard

    card = build_card(repo_id="alice/x", splits={"train": 1500, "validation": 100}, license="mit")
    parsed = DatasetCard(str(card))
    assert parsed.data.license == "mit" and parsed.data.size_categories == ["1K<n<10K"]
    configs = MetadataConfigs.from_dataset_card_data(parsed.data)
    assert configs["default"]["data_files"] == [{"split": "train", "path": "data/train-*"},
                                                 {"split": "validation", "path": "data/validation-*"}]
    assert validate_card_yaml(str(card)) == []
    assert validate_card_yaml(str(card).replace("license: mit", "license: my-own")) != []


def test_card_with_metadata_the_hub_rejects_fails_before_any_upload(hub: FakeHub) -> None:
    with pytest.raises(HubError, match="Invalid metadata"):
        push_dataset({"train": examples(3)}, "alice/bad", token="tok-alice", card_info={"license": "my-own"})
    assert not requests_of(hub, "/lfs-upload/") and not requests_of(hub, "/commit/")


# ---- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("repo_id", ["alice/", "a/b/c", "-bad-", "has space", "x" * 120])
def test_invalid_repo_id_is_refused_before_any_request(hub: FakeHub, repo_id: str) -> None:
    with pytest.raises(InputError, match="not a valid repo id"):
        push_dataset({"train": examples(2)}, repo_id, token="tok-alice")
    assert hub.requests == []


def test_no_token_bad_token_read_only_token_and_foreign_namespace(hub: FakeHub) -> None:
    with pytest.raises(MissingKeyError, match="No Hugging Face token"):
        push_dataset({"train": examples(2)}, "alice/ds", token="")
    with pytest.raises(HubAuthError, match="401"):
        push_dataset({"train": examples(2)}, "alice/ds", token="tok-nobody")
    with pytest.raises(HubAuthError, match="can only read"):
        push_dataset({"train": examples(2)}, "alice/ds", token="tok-alice-read")
    with pytest.raises(HubAuthError, match="bob is not your account: your token belongs to alice"):
        push_dataset({"train": examples(2)}, "bob/ds", token="tok-alice")
    assert "bob/ds" not in hub.repos and not requests_of(hub, "/preupload/")
    # An organization the user belongs to is fine.
    assert push_dataset({"train": examples(2)}, "team/ds", token="tok-alice").repo_id == "team/ds"


def test_403_from_the_hub_is_explained(hub: FakeHub) -> None:
    hub.fail_next["create"] = 403
    with pytest.raises(HubAuthError, match="may not write to alice/ds .403"):
        push_dataset({"train": examples(2)}, "alice/ds", token="tok-alice")


def test_409_conflict_when_the_repo_changed_during_the_push(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.fail_next["commit"] = 409
    with pytest.raises(HubConflictError, match="409 conflict.*Push again"):
        push_dataset({"train": examples(2)}, "alice/ds", token="tok-alice")
    # A real concurrent commit: someone else commits between our look at the repo and our commit,
    # so the parent commit we send is stale and the Hub refuses it.
    from huggingface_hub import HfApi

    push_dataset({"train": examples(2)}, "alice/ds2", token="tok-alice")
    repo = hub.repos["alice/ds2"]
    real_preupload = HfApi.preupload_lfs_files

    def preupload_then_someone_commits(self, *args, **kwargs):
        real_preupload(self, *args, **kwargs)
        hub.commit(repo, "someone else", {"other.txt": b"x"}, [])

    monkeypatch.setattr(HfApi, "preupload_lfs_files", preupload_then_someone_commits)
    with pytest.raises(HubConflictError, match="changed by someone else"):
        push_dataset({"train": examples(3)}, "alice/ds2", token="tok-alice")
    assert repo.commits[-1]["summary"] == "someone else"


def test_network_failure_mid_upload_leaves_the_draft_and_the_repo_unchanged(hub: FakeHub) -> None:
    from components.hub import push_draft

    visitor = "visitor-netfail-0001"
    drafts.save_draft(visitor, examples(6))
    before = drafts.draft_path(visitor).read_bytes()
    hub.fail_always["lfs-upload"] = "drop"
    import gradio as gr

    with pytest.raises(gr.Error, match="connection to the Hub failed.*local dataset was not changed"):
        shown_errors(push_draft)(visitor, None, "alice/net", True, "", "apache-2.0", 0.2, "tok-alice", None)
    assert drafts.draft_path(visitor).read_bytes() == before
    assert hub.repos["alice/net"].commits[-1]["summary"] == "initial commit"
    with pytest.raises(HubNetworkError):
        hub.fail_always.clear()
        hub.fail_always["commit"] = "drop"
        push_dataset({"train": examples(2)}, "alice/net", token="tok-alice")


def test_hub_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    with FakeHub(TOKENS) as dead:
        url = dead.url
    monkeypatch.setenv("HF_ENDPOINT", url)  # nothing listens there any more
    with pytest.raises(HubNetworkError, match="connection to the Hub failed"):
        push_dataset({"train": examples(2)}, "alice/x", token="tok-alice")


# ---- pull --------------------------------------------------------------------------------------
def _parquet(rows: list[dict]) -> bytes:
    import datasets

    buf = io.BytesIO()
    datasets.Dataset.from_list(rows).to_parquet(buf)
    return buf.getvalue()


def test_pull_reads_back_what_was_pushed(hub: FakeHub) -> None:
    push_dataset({"train": examples(4), "validation": examples(2, "v")}, "alice/rt", token="tok-alice")
    got = load_from_hub("alice/rt", split="validation", token="tok-alice")
    assert got.examples == examples(2, "v") and got.mapping == {"messages": "messages"}
    with pytest.raises(HubError, match="not found, or it is private"):
        load_from_hub("alice/rt", token=False)  # private: anonymous cannot see it
    with pytest.raises(InputError, match="no data files for split 'test'"):
        load_from_hub("alice/rt", split="test", token="tok-alice")


def test_pull_maps_columns(hub: FakeHub) -> None:
    hub.add_repo("bob/qa", "bob", files={
        "train.parquet": _parquet([{"question": "Who?", "answer": "Jonny", "id": 1},
                                   {"question": "Empty?", "answer": "", "id": 2}]),
        "test.parquet": _parquet([{"prompt": "P", "response": "R"}]),
        "other/train.jsonl": b'{"prompt": "Hi", "completion": "Hello"}\n'})
    got = load_from_hub("bob/qa")
    assert got.examples == [{"messages": [{"role": "user", "content": "Who?"},
                                          {"role": "assistant", "content": "Jonny"}]}]
    assert got.skipped == 1 and got.mapping == {"user": "question", "assistant": "answer"}
    assert load_from_hub("bob/qa", split="test").mapping == {"user": "prompt", "assistant": "response"}
    hub.add_repo("bob/alpaca", "bob", files={"data/train.csv": b"instruction,input,output\nAdd,2 and 3,5\n"})
    alpaca = load_from_hub("bob/alpaca")
    assert alpaca.examples[0]["messages"][0] == {"role": "user", "content": "Add\n\n2 and 3"}
    custom = load_from_hub("bob/qa", config="other", mapping={"user": "completion", "assistant": "prompt"})
    assert custom.examples[0]["messages"][1] == {"role": "assistant", "content": "Hi"}
    with pytest.raises(InputError, match="Column nope is not in this split"):
        load_from_hub("bob/qa", mapping={"user": "nope", "assistant": "answer"})


# ---- tokens: the Space owner's HF_TOKEN is never a visitor's ----------------------------------
def test_token_rules_on_and_off_a_space(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "owner-token")
    assert auth.resolve_token(None, required=True) == "owner-token"
    assert auth.resolve_token("typed", required=True) == "typed"
    monkeypatch.setenv("SPACE_ID", "owner/distill-studio")
    with pytest.raises(MissingKeyError):
        auth.resolve_token(None, required=True)
    assert auth.resolve_token("", required=False) is False  # anonymous, not the owner's token
    assert auth.resolve_token("visitor", required=True) == "visitor"


def test_oauth_token_is_used_on_a_space_and_owner_token_never(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    import gradio as gr

    from components.hub import push_draft

    monkeypatch.setenv("SPACE_ID", "owner/distill-studio")
    monkeypatch.setenv("HF_TOKEN", "tok-bob")  # the owner's secret
    visitor = "visitor-oauth-00001"
    drafts.save_draft(visitor, examples(5))
    signed_in = gr.OAuthToken(token="tok-alice", scope="openid profile write-repos", expires_at=int(time.time()) + 600)
    push = shown_errors(push_draft)  # as wire() shows it: errors become gr.Error
    text = push(visitor, SessionSettings(), "mine", True, "via oauth", "apache-2.0", 0.2, "", signed_in)["push_md"]
    assert "alice/mine" in text and "alice/mine" in hub.repos and "bob/mine" not in hub.repos
    with pytest.raises(gr.Error, match="Sign in with Hugging Face"):
        push(visitor, SessionSettings(), "mine2", True, "", "apache-2.0", 0.2, "", None)
    # A token the visitor typed in Settings is theirs too.
    mine = SessionSettings(hf_token="tok-alice")
    assert "alice/mine3" in push(visitor, mine, "mine3", True, "", "apache-2.0", 0.2, "", None)["push_md"]
    assert not any("bob" in r[1] for r in hub.requests)


def test_gradio_injects_the_oauth_token_into_the_push_handler(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over HTTP: gradio fills the `gr.OAuthToken | None` parameter; no token -> a clear error."""
    import gradio as gr
    from gradio_client import Client

    from components.hub import push_draft

    monkeypatch.setenv("SPACE_ID", "owner/distill-studio")
    monkeypatch.setenv("HF_TOKEN", "tok-bob")
    visitor = "visitor-oauth-http01"
    drafts.save_draft(visitor, examples(4))
    with gr.Blocks() as demo:
        comps = {"visitor": gr.Textbox(visitor), "settings": gr.State(SessionSettings()),
                 "repo_box": gr.Textbox("viahttp"), "private_chk": gr.Checkbox(True), "message_box": gr.Textbox("m"),
                 "license_dd": gr.Textbox("apache-2.0"), "val_sld": gr.Number(0.25), "token_box": gr.Textbox(""),
                 "push_md": gr.Markdown()}
        wire(gr.Button().click, push_draft, comps, api_name="push")
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, oauth_token="tok-alice", verbose=False, download_files=False)
        result = client.predict(visitor, "viahttp", True, "m", "apache-2.0", 0.25, "", api_name="/push")
        assert "alice/viahttp" in result and "alice/viahttp" in hub.repos
        anonymous = Client(demo.local_url, verbose=False, download_files=False)
        with pytest.raises(Exception, match="Sign in with Hugging Face"):
            anonymous.predict(visitor, "viahttp2", True, "m", "apache-2.0", 0.25, "", api_name="/push")
    finally:
        demo.close()


# ---- the tab's load panel and per-visitor data --------------------------------------------------
def test_load_replaces_or_appends_only_this_visitors_draft(hub: FakeHub) -> None:
    import gradio as gr

    from components.hub import load_dataset_into_draft

    push_dataset({"train": examples(3, "hub")}, "alice/pub", token="tok-alice", private=False)
    me, other = "visitor-load-000001", "visitor-load-000002"
    drafts.save_draft(me, examples(2, "mine"))
    drafts.save_draft(other, examples(1, "theirs"))
    drafts.update_meta(me, generation=GENERATION)
    load = shown_errors(load_dataset_into_draft)  # as wire() shows it: errors become gr.Error
    with pytest.raises(gr.Error, match="replace your draft or are added"):
        load(me, None, 0, "alice/pub", "", "train", "", "", "", None, "", None)
    text, rev = load(me, None, 4, "alice/pub", "", "train", "", "", "", "Add to the draft", "", None).values()
    assert rev == 5 and "draft now has 5" in text and len(drafts.load_draft(me)) == 5
    draft_ops.save_unparsed(me, [Unparsed(line=6, raw="{oops", code="invalid_json", message="not JSON")])  # a raw row to fix
    text, rev = load(me, None, rev, "alice/pub", "", "train", "", "", "", "Replace the draft", "", None).values()
    assert drafts.load_draft(me) == examples(3, "hub") and rev == 6
    assert drafts.load_meta(me)["generation"] == []  # the card no longer credits the teacher
    assert draft_ops.load_unparsed(me) == []  # the old table's unreadable line is not a line of this data
    # Nothing is lost: the Dataset tab's undo brings the replaced table back, its raw row too (it was
    # replaced with no way back before).
    assert "Undo last bulk change" in text
    assert draft_ops.undo(me) is not None
    assert len(drafts.load_draft(me)) == 5 and [u.raw for u in draft_ops.load_unparsed(me)] == ["{oops"]
    assert drafts.load_draft(other) == examples(1, "theirs")
    assert drafts.draft_path(me).parent != drafts.draft_path(other).parent


def test_preview_card_shows_the_visitors_provenance() -> None:
    from components.hub import preview_card

    visitor = "visitor-preview-0001"
    drafts.save_draft(visitor, examples(10))
    drafts.update_meta(visitor, generation=GENERATION)
    card = preview_card(visitor, "my-set", "cc-by-4.0", 0.2)["card_code"]
    assert "your-name/my-set" in card and "license: cc-by-4.0" in card and "gpt-4o" in card
    assert "8 train, 2 validation" in card and validate_card_yaml(card) == []


# ---- command line --------------------------------------------------------------------------------
def _cli(args: list[str], hub: FakeHub, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_OFFLINE", "SPACE_ID")}
    full.update({"HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", **env})
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=240)


def test_cli_push_and_pull(hub: FakeHub, tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(ex) + "\n" for ex in examples(10)), encoding="utf-8")
    # --token beats HF_TOKEN; a bare name goes to the token's own namespace.
    done = _cli(["push", str(data), "--repo-id", "cli-set", "--token", "tok-alice", "--val-fraction", "0.2",
                 "--public", "--json"], hub, HF_TOKEN="tok-bob")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["repo_id"] == "alice/cli-set" and out["splits"] == {"train": 8, "validation": 2}
    assert out["private"] is False and set(out) >= {"url", "commit_url", "commit_oid", "created", "files", "deleted"}
    pulled = tmp_path / "pulled.jsonl"
    done = _cli(["pull", "alice/cli-set", "--out", str(pulled), "--split", "validation", "--json"], hub,
                HF_TOKEN="tok-alice")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["examples"] == 2 and len(pulled.read_text().splitlines()) == 2
    bad = _cli(["push", str(data), "--repo-id", "alice/x"], hub)
    assert bad.returncode == 2 and "No Hugging Face token" in bad.stderr
    bad = _cli(["push", str(data), "--repo-id", "bob/x", "--token", "tok-alice"], hub)
    assert bad.returncode == 1 and "bob is not your account" in bad.stderr
