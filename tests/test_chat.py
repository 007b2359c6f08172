"""Three-pane chat against a real local HTTP server whose models are slow, fast or broken on purpose."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest

from pipeline.chat import ChatSession, PaneConfig, PaneSpec, Params, extras, stream_panes
from pipeline.chat.session import metrics_line, model_messages
from pipeline.errors import InputError, MissingKeyError
from tests.fakes.chat_server import FakeChatServer


@pytest.fixture(scope="module")
def server():
    with FakeChatServer() as srv:
        yield srv


def _specs(server, models, messages=None):
    msgs = messages or [{"role": "user", "content": "hello"}]
    return [PaneSpec(server.client(), m, list(msgs)) for m in models]


def _first_seen(snapshots_iter, n):
    """Order in which panes showed their first token / finished, as the consumer saw it."""
    first_token: list[int] = []
    finished: list[int] = []
    last = None
    for snap in snapshots_iter:
        for i, s in enumerate(snap):
            if s.text and i not in first_token:
                first_token.append(i)
            if s.final and i not in finished:
                finished.append(i)
        last = snap
    return first_token, finished, last


def test_fast_panes_answer_before_the_slow_one_starts(server):
    # The slow model is first in the list: a round-robin or sequential merger would make the fast
    # ones wait for it.
    first_token, finished, last = _first_seen(
        stream_panes(_specs(server, ["delay-3-slow", "fast-a", "fast-b"])), 3)
    assert first_token[-1] == 0, first_token
    assert set(finished[:2]) == {1, 2}, "both fast panes finished before the slow one"
    assert [s.status for s in last] == ["done", "done", "done"]
    assert last[0].text == "delay-3-slow says: hello"
    # Time to first token is measured per pane: the fast panes' is not the slow one's.
    assert last[1].metrics.ttft_s < last[0].metrics.ttft_s
    assert last[2].metrics.ttft_s < last[0].metrics.ttft_s


def test_failing_panes_leave_the_others_intact(server):
    *_, last = _first_seen(stream_panes(_specs(server, ["error-x", "fast-a", "midfail-y"])), 3)
    assert last[1].status == "done" and last[1].text == "fast-a says: hello"
    assert last[0].status == "error" and "500" in last[0].error and "failed on purpose" in last[0].error
    assert last[2].status == "error" and last[2].text  # it had streamed a little before breaking


def test_updates_are_throttled_not_one_per_token(server):
    words = " ".join(f"w{i}" for i in range(80))
    with FakeChatServer(answers={"long": words}) as srv:
        specs = [PaneSpec(srv.client(), m, [{"role": "user", "content": "long"}]) for m in ("a", "b", "c")]
        snaps = list(stream_panes(specs, throttle_s=0.1))
    deltas = 3 * 80
    assert snaps[-1][0].text == words
    assert len(snaps) < deltas / 4, f"{len(snaps)} snapshots for {deltas} tokens"


def test_usage_from_the_server_gives_exact_tokens_and_speed(server):
    *_, last = _first_seen(stream_panes(_specs(server, ["fast-a"])), 1)
    m = last[0].metrics
    assert m.exact_tokens and m.output_tokens == 3 and m.input_tokens == 1
    assert m.tokens_per_s and m.tokens_per_s > 0 and m.elapsed_s >= m.ttft_s


def _configs(*models):
    return [PaneConfig(label, "fake", m) for label, m in zip(("base", "fine_tuned", "teacher"), models, strict=True)]


def test_stop_one_pane_while_it_waits(server):
    session = ChatSession()
    # The slow model would answer after 60 s: the turn ending with its pane empty shows the stop did
    # not wait for it.
    turns = session.send("hi", _configs("delay-60-slow", "fast-a", "fast-b"), Params(), lambda _: server.client())
    for turn in turns:
        if turn.states[1].final and turn.states[2].final and not session.stops[0].is_set():
            session.stop(0)
    assert turn.states[0].status == "stopped"
    assert session.histories[0][-1] == {"role": "assistant", "content": "(stopped before answering)", "error": True}
    assert session.histories[1][-1]["content"] == "fast-a says: hi"
    assert session.busy == [False, False, False]
    # The stopped bubble is not sent back as if the model had said it.
    assert model_messages(session.histories[0], Params()) == [{"role": "user", "content": "hi"}]


def test_regenerate_changes_one_pane_only(server):
    session = ChatSession()
    configs = _configs("fast-a", "fast-b", "fast-c")
    list(session.send("first", configs, Params(), lambda _: server.client()))
    before = [list(h) for h in session.histories]
    configs2 = _configs("fast-a", "other-model", "fast-c")
    list(session.regenerate(1, configs2, Params(), lambda _: server.client()))
    assert session.histories[0] == before[0] and session.histories[2] == before[2]
    assert session.histories[1] == [{"role": "user", "content": "first"},
                                    {"role": "assistant", "content": "other-model says: first"}]


def test_missing_key_breaks_only_its_pane(server):
    def client_for(endpoint):
        if endpoint == "openai":
            raise MissingKeyError("No API key for endpoint 'openai'. Type one in the Settings tab.")
        return server.client()

    configs = [PaneConfig("base", "fake", "fast-a"), PaneConfig("teacher", "openai", "gpt-4.1"),
               PaneConfig("x", "fake", "fast-b")]
    session = ChatSession()
    turns = list(session.send("q", configs, Params(), client_for))
    assert turns[-1].states[1].status == "error"
    assert "Settings tab" in session.histories[1][-1]["content"]
    assert session.histories[0][-1]["content"] == "fast-a says: q"


def test_history_system_prompt_and_few_shot_are_sent(server):
    server.requests.clear()
    shots = extras.few_shot_messages([
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u1"},
                      {"role": "assistant", "content": "a1"}]},
        {"messages": [{"role": "user", "content": "bad"}]},  # no answer: skipped
        {"messages": [{"role": "user", "content": "u2"}, {"role": "assistant", "content": "a2"}]},
    ], k=2)
    assert [m["content"] for m in shots] == ["u1", "a1", "u2", "a2"]
    configs = [PaneConfig("base", "fake", "fast-a", few_shot=shots)] + _configs("x", "fast-b", "fast-c")[1:]
    session = ChatSession()
    params = Params(system="Be brief.", temperature=0.2, max_tokens=33)
    list(session.send("one", configs, params, lambda _: server.client()))
    list(session.send("two", configs, params, lambda _: server.client()))
    base_req = [r for r in server.requests if r["model"] == "fast-a"][-1]
    assert [m["content"] for m in base_req["messages"]] == ["Be brief.", "u1", "a1", "u2", "a2", "one",
                                                            "fast-a says: one", "two"]
    assert base_req["temperature"] == 0.2 and base_req["max_tokens"] == 33
    other = [r for r in server.requests if r["model"] == "fast-b"][-1]
    assert [m["content"] for m in other["messages"]][:2] == ["Be brief.", "one"]


def test_busy_pane_refuses_a_second_send(server):
    session = ChatSession()
    turns = session.send("a", _configs("delay-0.5-s", "fast-a", "fast-b"), Params(), lambda _: server.client())
    next(turns)
    with pytest.raises(InputError):
        session.send("b", _configs("fast-a", "fast-a", "fast-b"), Params(), lambda _: server.client())
    list(turns)
    assert not any(session.busy)


def test_clear_can_be_undone(server):
    session = ChatSession()
    list(session.send("a", _configs("fast-a", "fast-b", "fast-c"), Params(), lambda _: server.client()))
    kept = [list(h) for h in session.histories]
    session.clear()
    assert session.histories == [[], [], []] and session.can_undo()
    session.undo_clear()
    assert session.histories == kept


def test_blind_vote_is_logged_and_reveals_names(server):
    session = ChatSession()
    configs = _configs("fast-a", "fast-b", "fast-c")
    extras.start_blind(session, random.Random(3))
    list(session.send("who?", configs, Params(), lambda _: server.client()))
    shown_models = [h[-1]["content"].split(" says")[0] for h in session.histories]
    assert sorted(shown_models) == ["fast-a", "fast-b", "fast-c"]
    record = extras.record_vote("visitor-123456", session, configs, "B")
    assert record["winner"]["model"] == shown_models[1]
    assert shown_models[1] in record["mapping"]["B"]
    lines = extras.votes_path("visitor-123456").read_text().splitlines()
    assert json.loads(lines[-1])["vote"] == "B"
    with pytest.raises(InputError):
        extras.record_vote("visitor-123456", session, configs, "A")  # one vote per round


def test_exports_have_every_pane(server):
    session = ChatSession()
    configs = _configs("fast-a", "error-x", "fast-c")
    list(session.send("hello", configs, Params(system="sys"), lambda _: server.client()))
    md, js = extras.write_exports("visitor-123456", session, configs, Params(system="sys"))
    text = md.read_text()
    assert "fast-a says: hello" in text and "_(error)_" in text and "**System prompt:** sys" in text
    data = json.loads(js.read_text())
    assert [p["model"] for p in data["panes"]] == ["fast-a", "error-x", "fast-c"]
    assert data["panes"][1]["messages"][-1]["error"] is True


def test_threads_do_not_outlive_the_turn(server):
    before = {t.name for t in threading.enumerate() if t.name.startswith("chat-pane")}
    list(stream_panes(_specs(server, ["fast-a", "error-x"])))
    time.sleep(0.2)
    after = {t.name for t in threading.enumerate() if t.name.startswith("chat-pane")}
    assert not (after - before)


def test_an_empty_answer_says_so_and_is_not_sent_back():
    session = ChatSession()
    with FakeChatServer(answers={"blank": ""}) as srv:
        *_, turn = session.send("blank", _configs("a", "b", "c"), Params(), lambda _: srv.client())
    assert [s.status for s in turn.states] == ["done"] * 3
    assert session.histories[0][-1] == {"role": "assistant", "content": "(empty answer: the model stopped at once)",
                                        "error": True}
    assert model_messages(session.histories[0], Params()) == [{"role": "user", "content": "blank"}]


@pytest.mark.parametrize("cost, shown", [(0.0, "$0 (free model)"), (None, "cost unknown"), (0.000123, "$0.000123")])
def test_metrics_line_says_what_an_answer_cost(cost, shown):
    done = {"status": "done", "finish_reason": "stop", "ttft_s": 0.25, "elapsed_s": 1.0, "input_tokens": 5,
            "output_tokens": 20, "tokens_per_s": 21.3, "cost_usd": cost, "exact_tokens": True}
    assert metrics_line(done) == f"first token 0.25 s · 20 tokens · 21.3 tok/s · {shown}"
