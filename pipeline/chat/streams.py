"""Stream several chat completions at once and merge them into throttled snapshots.

Each pane's request runs in its own thread (the openai SDK's sync client is thread-safe and streams
with blocking reads), so a model that takes 3 s to answer holds back nobody else. Workers put plain
`PaneEvent`s on one queue and time-stamp them where they happen, so the metrics (time to first token,
tokens/s) measure the model, not the merger. The merger turns events into `PaneState`s and yields a
snapshot of all panes at most every `throttle_s`, except that a change of status (first token, done,
error, stopped) is shown at once: those are few, and the first token is what the audience watches.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.errors import explain
from pipeline.tokens import count_messages, counter_for, usage_cost_usd

DEFAULT_THROTTLE_S = 0.075
FINAL = ("done", "error", "stopped")


@dataclass
class PaneSpec:
    """One request: which client and model, the full message list to send, sampling parameters."""

    client: Any
    model: str
    messages: list[dict]
    temperature: float | None = None
    max_tokens: int | None = None
    #: Set when the client could not even be built (no key...): the pane shows this error at once.
    setup_error: str | None = None
    #: OpenAI `tools` and `tool_choice` (sent only with tools: a server refuses a choice without them).
    tools: list[dict] | None = None
    tool_choice: str | None = None


@dataclass
class PaneMetrics:
    ttft_s: float | None = None
    elapsed_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int = 0
    tokens_per_s: float | None = None
    cost_usd: float | None = None
    #: False when the server sent no usage and the counts were estimated with a tokenizer.
    exact_tokens: bool = False


@dataclass
class PaneState:
    text: str = ""
    status: str = "waiting"  # waiting | streaming | done | error | stopped
    error: str | None = None
    #: The server's finish_reason: "stop", "tool_calls", or "length" when max tokens cut the answer.
    finish_reason: str | None = None
    #: Tool calls as they stream in, OpenAI's shape ({id, type, function: {name, arguments}}).
    tool_calls: list[dict] = field(default_factory=list)
    metrics: PaneMetrics = field(default_factory=PaneMetrics)

    @property
    def final(self) -> bool:
        return self.status in FINAL


@dataclass(frozen=True)
class PaneEvent:
    pane: int
    kind: str  # delta | call | done | error | stopped
    at: float
    text: str = ""
    usage: dict | None = None
    #: A tool-call delta: {index, id, name, arguments} with whatever parts this chunk carried.
    call: dict | None = None


def add_call_delta(calls: list[dict], delta: dict) -> None:
    """Merge one streamed tool-call piece into `calls`: OpenAI sends the id and name once, then the
    arguments in pieces, each tagged with the call's index."""
    index = delta.get("index") or 0
    while len(calls) <= index:
        calls.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
    call = calls[index]
    if delta.get("id"):
        call["id"] = delta["id"]
    if delta.get("name"):
        call["function"]["name"] += delta["name"]
    if delta.get("arguments"):
        call["function"]["arguments"] += delta["arguments"]


class _Worker:
    """Runs one pane's streaming request in a thread and reports events; can be stopped."""

    def __init__(self, index: int, spec: PaneSpec, events: queue.Queue, stop: threading.Event) -> None:
        self.index, self.spec, self.events, self.stop = index, spec, events, stop
        self._stream: Any = None
        self.thread = threading.Thread(target=self._run, name=f"chat-pane-{index}", daemon=True)

    def _put(self, kind: str, text: str = "", usage: dict | None = None, call: dict | None = None) -> None:
        self.events.put(PaneEvent(self.index, kind, time.perf_counter(), text, usage, call))

    def _run(self) -> None:
        spec = self.spec
        params: dict[str, Any] = {}
        if spec.temperature is not None:
            params["temperature"] = spec.temperature
        if spec.max_tokens:
            params["max_tokens"] = spec.max_tokens
        if spec.tools:
            params["tools"] = spec.tools
            if spec.tool_choice:
                params["tool_choice"] = spec.tool_choice
        usage: dict | None = None
        finish: str | None = None
        try:
            self._stream = spec.client.chat.completions.create(
                model=spec.model, messages=spec.messages, stream=True,
                stream_options={"include_usage": True}, **params)
            with self._stream as stream:
                for chunk in stream:
                    if self.stop.is_set():
                        self._put("stopped")
                        return
                    if getattr(chunk, "usage", None):
                        usage = {"prompt_tokens": chunk.usage.prompt_tokens,
                                 "completion_tokens": chunk.usage.completion_tokens}
                    for choice in chunk.choices or []:
                        delta = getattr(choice.delta, "content", None)
                        if delta:
                            self._put("delta", delta)
                        for tc in getattr(choice.delta, "tool_calls", None) or []:
                            fn = tc.function
                            self._put("call", call={"index": tc.index, "id": tc.id, "name": fn and fn.name,
                                                    "arguments": fn and fn.arguments})
                        finish = choice.finish_reason or finish
            if self.stop.is_set():
                self._put("stopped")
            elif finish is None:
                # The SDK ends quietly when the server hangs up mid-stream; say the answer is cut.
                self._put("error", "The connection closed before the answer was complete. "
                          "Check that the endpoint is still running, then press Regenerate.")
            else:
                self._put("done", finish, usage=usage)
        except Exception as exc:  # any failure becomes this pane's error bubble; the others go on
            self._put("stopped" if self.stop.is_set() else "error", explain(exc))

    def close(self) -> None:
        """Hang up the HTTP stream so a stopped pane frees its connection without waiting."""
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception as exc:  # closing a half-read socket from another thread may race
                self._put("stopped", f"closed with {type(exc).__name__}")


def _finish(state: PaneState, spec: PaneSpec, started: float, first: float | None, ended: float,
            usage: dict | None, pieces: int = 0) -> None:
    m = state.metrics
    m.elapsed_s = ended - started
    if usage:
        m.input_tokens, m.output_tokens, m.exact_tokens = usage["prompt_tokens"], usage["completion_tokens"], True
    else:
        counter = counter_for(spec.model)
        m.input_tokens = count_messages(spec.messages, counter)
        said = state.text + "".join(c["function"]["name"] + c["function"]["arguments"] for c in state.tool_calls)
        m.output_tokens = counter.count(said) if said else 0
    if pieces and pieces <= len(state.tool_calls) + 1 and ended > started and m.output_tokens > 1:
        # The reply came whole (a text chunk and one chunk per call: the local backend decodes a tool
        # call before sending it), so the time after the first piece measures nothing (it showed
        # 40,000 tok/s): the speed is over the whole request instead.
        m.tokens_per_s = m.output_tokens / (ended - started)
    elif first is not None and ended > first and m.output_tokens > 1:
        # Generation speed after the first token: the wait for the first one is reported separately.
        m.tokens_per_s = (m.output_tokens - 1) / (ended - first)
    m.cost_usd = usage_cost_usd(spec.model, m.input_tokens or 0, m.output_tokens)


def stream_panes(specs: Sequence[PaneSpec], *, stops: Sequence[threading.Event] | None = None,
                 throttle_s: float = DEFAULT_THROTTLE_S) -> Iterator[list[PaneState]]:
    """Start every pane at once; yield snapshots (copies) of all panes until each one has finished.

    `stops[i].set()` stops pane i: it is marked stopped at the next snapshot and its stream is closed;
    the other panes are not affected. The last snapshot has every pane in a final state.
    """
    stops = list(stops) if stops is not None else [threading.Event() for _ in specs]
    events: queue.Queue[PaneEvent] = queue.Queue()
    states = [PaneState() for _ in specs]
    firsts: list[float | None] = [None] * len(specs)
    pieces = [0] * len(specs)  # content and tool-call chunks per pane
    started = time.perf_counter()
    workers: list[_Worker | None] = []
    for i, spec in enumerate(specs):
        if spec.setup_error:
            states[i].status, states[i].error = "error", spec.setup_error
            workers.append(None)
            continue
        worker = _Worker(i, spec, events, stops[i])
        workers.append(worker)
        worker.thread.start()

    def snapshot() -> list[PaneState]:
        return [replace(s, metrics=replace(s.metrics), tool_calls=[{**c, "function": dict(c["function"])}
                                                                    for c in s.tool_calls]) for s in states]

    yield snapshot()
    last_yield, dirty = time.perf_counter(), False
    while not all(s.final for s in states):
        urgent = False
        timeout = max(0.0, throttle_s - (time.perf_counter() - last_yield)) if dirty else throttle_s
        try:
            event: PaneEvent | None = events.get(timeout=timeout)
        except queue.Empty:
            event = None
        for i, stop in enumerate(stops[:len(states)]):
            if stop.is_set() and not states[i].final:  # stop shows at once, even mid-wait
                states[i].status = "stopped"
                _finish(states[i], specs[i], started, firsts[i], time.perf_counter(), None)
                if workers[i] is not None:
                    threading.Thread(target=workers[i].close, daemon=True).start()
                urgent = True
        if event is not None and not states[event.pane].final:
            state, spec = states[event.pane], specs[event.pane]
            if event.kind in ("delta", "call"):
                if firsts[event.pane] is None:
                    firsts[event.pane] = event.at
                    state.metrics.ttft_s = event.at - started
                    state.status, urgent = "streaming", True
                pieces[event.pane] += 1
                if event.call is not None:
                    add_call_delta(state.tool_calls, event.call)
                else:
                    state.text += event.text
                dirty = True
            else:
                state.status = event.kind
                if event.kind == "error":
                    state.error = event.text
                elif event.kind == "done":
                    state.finish_reason = event.text or None
                _finish(state, spec, started, firsts[event.pane], event.at, event.usage, pieces[event.pane])
                urgent = True
        if urgent or (dirty and time.perf_counter() - last_yield >= throttle_s):
            yield snapshot()
            last_yield, dirty = time.perf_counter(), False
    if dirty:
        yield snapshot()
