"""One visitor's three-pane conversation: histories, stop switches, regenerate, clear and undo.

Kept in the visitor's gr.State (never a module global). Each pane has its own history because
regenerating one pane, or a pane failing, must not change what the others remember. Error bubbles
are kept for display but never sent back to a model as if it had said them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.chat.streams import PaneSpec, PaneState, stream_panes
from pipeline.chat.tools import pending_calls, request_messages, tool_message
from pipeline.errors import InputError, explain

N_PANES = 3
DEFAULT_LABELS = ("base", "fine_tuned", "teacher")


@dataclass(frozen=True)
class PaneConfig:
    """What the visitor picked for one pane."""

    label: str
    endpoint: str
    model: str
    #: Few-shot turns put between the system prompt and the conversation (the base pane's preset).
    few_shot: tuple[dict, ...] = ()


@dataclass
class Params:
    system: str = ""
    temperature: float | None = 0.7
    max_tokens: int | None = 512
    #: The visitor's OpenAI `tools` (None: no tools) and `tool_choice` (auto | none | required).
    tools: list[dict] | None = None
    tool_choice: str = "auto"


@dataclass
class Turn:
    """What one send produced, pane by pane: the displayed histories and the live states."""

    histories: list[list[dict]]
    states: list[PaneState | None] = field(default_factory=list)


def model_messages(history: Sequence[dict], params: Params, few_shot: Sequence[dict] = ()) -> list[dict]:
    """The messages a model is sent: system prompt, few-shot turns, then its own real turns (tool calls
    and results included, tools.request_messages)."""
    out = [{"role": "system", "content": params.system}] if params.system.strip() else []
    out += [{"role": m["role"], "content": m["content"]} for m in few_shot]
    return out + request_messages(history)


class ChatSession:
    def __init__(self, n_panes: int = N_PANES) -> None:
        self.histories: list[list[dict]] = [[] for _ in range(n_panes)]
        self.metrics: list[dict | None] = [None] * n_panes
        self.stops = [threading.Event() for _ in range(n_panes)]
        self.busy = [False] * n_panes
        self._undo: tuple[list[list[dict]], list[dict | None]] | None = None
        #: Blind mode: column j shows the pane config order[j]; None when not blind.
        self.blind_order: list[int] | None = None
        self.blind_revealed = False

    def __deepcopy__(self, memo: dict) -> ChatSession:
        # Gradio deep-copies a State's initial value for each visitor: each gets a fresh session.
        return ChatSession(len(self.histories))

    @property
    def n(self) -> int:
        return len(self.histories)

    def effective(self, configs: Sequence[PaneConfig]) -> list[PaneConfig]:
        """Configs per displayed column (shuffled in blind mode)."""
        if self.blind_order is None:
            return list(configs)
        return [configs[k] for k in self.blind_order]

    def stop(self, pane: int) -> None:
        self.stops[pane].set()

    def clear(self) -> None:
        if any(self.histories):
            self._undo = ([list(h) for h in self.histories], list(self.metrics))
        self.histories = [[] for _ in range(self.n)]
        self.metrics = [None] * self.n

    def can_undo(self) -> bool:
        return self._undo is not None

    def undo_clear(self) -> None:
        if self._undo is not None:
            self.histories, self.metrics = self._undo
            self._undo = None

    def send(self, message: str, configs: Sequence[PaneConfig], params: Params,
             client_for: Callable[[str], Any], *, throttle_s: float | None = None) -> Iterator[Turn]:
        """Send `message` to every pane at once; yield displayed histories as the answers stream."""
        if not message.strip():
            raise InputError("Type a message first.")
        panes = list(range(self.n))
        self._claim(panes)
        for h in self.histories:
            h.append({"role": "user", "content": message})
        return self._run(panes, configs, params, client_for, throttle_s)

    def regenerate(self, pane: int, configs: Sequence[PaneConfig], params: Params,
                   client_for: Callable[[str], Any], *, throttle_s: float | None = None) -> Iterator[Turn]:
        """Ask pane `pane` again for its last answer; the other panes keep theirs."""
        history = self.histories[pane]
        if not any(m["role"] == "user" for m in history):
            raise InputError("Nothing to regenerate yet: send a message first.")
        self._claim([pane])
        while history and history[-1]["role"] == "assistant":
            history.pop()
        return self._run([pane], configs, params, client_for, throttle_s)

    def answer_call(self, pane: int, result: str, configs: Sequence[PaneConfig], params: Params,
                    client_for: Callable[[str], Any], *, throttle_s: float | None = None) -> Iterator[Turn]:
        """The visitor's result for pane `pane`'s first waiting tool call; once every call of the turn
        has its result, the model goes on (streamed like an answer)."""
        waiting = pending_calls(self.histories[pane])
        if not waiting:
            raise InputError("This pane has no tool call waiting for a result.")
        if not result.strip():
            raise InputError(f"Type what {waiting[0]['function']['name']} returned (JSON or text), then send it.")
        self._claim([pane])
        self.histories[pane].append(tool_message(waiting[0], result))
        if len(waiting) > 1:  # more calls of the same turn wait: the model answers when all have results
            self.busy[pane] = False
            return iter([Turn([list(h) for h in self.histories])])
        return self._run([pane], configs, params, client_for, throttle_s)

    def _claim(self, panes: list[int]) -> None:
        if any(self.busy[i] for i in panes):
            raise InputError("A pane is still answering; wait for it or press its Stop button.")
        for i in panes:
            self.busy[i] = True
            self.stops[i].clear()

    def _run(self, panes: list[int], configs: Sequence[PaneConfig], params: Params,
             client_for: Callable[[str], Any], throttle_s: float | None) -> Iterator[Turn]:
        cols = self.effective(configs)
        specs = []
        for i in panes:
            cfg = cols[i]
            client, error = None, None
            try:
                client = client_for(cfg.endpoint)
            except Exception as exc:  # a missing key breaks this pane only; the message says what to do
                error = explain(exc)
            specs.append(PaneSpec(client, cfg.model, model_messages(self.histories[i], params, cfg.few_shot),
                                  params.temperature, params.max_tokens, setup_error=error,
                                  tools=params.tools, tool_choice=params.tool_choice if params.tools else None))
        kwargs = {} if throttle_s is None else {"throttle_s": throttle_s}
        states: list[PaneState] = []
        try:
            for states in stream_panes(specs, stops=[self.stops[i] for i in panes], **kwargs):
                yield self._turn(panes, states)
        finally:
            # Runs also when the UI drops the generator (page closed): keep what arrived, free panes.
            for i, state in zip(panes, states or [None] * len(panes), strict=True):
                if state is not None:
                    self.histories[i].append(_reply(state))
                    self.metrics[i] = metrics_dict(state)
                if state is None or not state.final:
                    self.stops[i].set()  # the consumer went away: let the worker hang up
                self.busy[i] = False

    def _turn(self, panes: list[int], states: list[PaneState]) -> Turn:
        shown = [list(h) for h in self.histories]
        all_states: list[PaneState | None] = [None] * self.n
        for i, state in zip(panes, states, strict=True):
            shown[i].append(_reply(state))
            all_states[i] = state
        return Turn(shown, all_states)


def _reply(state: PaneState) -> dict:
    """The assistant bubble for a pane's state; errors and empty stops are flagged, never re-sent. Tool
    calls are kept in OpenAI's shape; a call cut short (stopped, failed) is shown but never re-sent."""
    calls = {"tool_calls": state.tool_calls} if state.tool_calls else {}
    if state.status == "error":
        partial = f"{state.text}\n\n" if state.text else ""
        return {"role": "assistant", "content": f"{partial}⚠️ {state.error}", "error": True, **calls}
    if state.status == "stopped" and calls:
        return {"role": "assistant", "content": state.text or "(stopped while calling a tool)", "error": True, **calls}
    if state.status == "stopped" and not state.text:
        return {"role": "assistant", "content": "(stopped before answering)", "error": True}
    if calls:
        return {"role": "assistant", "content": state.text, **calls}
    if state.status == "done" and not state.text.strip():
        # Small models do this (an end-of-text first); an empty bubble looked like a frozen pane.
        return {"role": "assistant", "content": "(empty answer: the model stopped at once)", "error": True}
    msg = {"role": "assistant", "content": state.text}
    if state.status == "stopped":
        msg["stopped"] = True
    return msg


def metrics_dict(state: PaneState) -> dict:
    m = state.metrics
    return {"status": state.status, "finish_reason": state.finish_reason, "ttft_s": m.ttft_s, "elapsed_s": m.elapsed_s,
            "input_tokens": m.input_tokens, "output_tokens": m.output_tokens,
            "tokens_per_s": m.tokens_per_s, "cost_usd": m.cost_usd, "exact_tokens": m.exact_tokens}


def metrics_line(state: PaneState | dict | None, *, hide_cost: bool = False) -> str:
    """One short line under a pane: time to first token, tokens, speed, cost."""
    if state is None:
        return ""
    d = metrics_dict(state) if isinstance(state, PaneState) else state
    if d["status"] == "waiting":
        return "waiting for the first token…"
    if d["status"] == "error":
        return "no answer: the error is in the bubble"
    parts = []
    if d["ttft_s"] is not None:
        parts.append(f"first token {d['ttft_s']:.2f} s")
    if d["status"] == "streaming":
        return " · ".join(parts + ["streaming…"])
    approx = "" if d["exact_tokens"] else "≈"
    if d["output_tokens"]:
        parts.append(f"{approx}{d['output_tokens']} tokens")
    if d["tokens_per_s"]:
        parts.append(f"{d['tokens_per_s']:.1f} tok/s")
    if not hide_cost:
        cost = d["cost_usd"]
        parts.append("cost unknown" if cost is None else "$0 (free model)" if cost == 0 else f"${cost:.6f}")
    if d["status"] == "stopped":
        parts.append("stopped")
    if d.get("finish_reason") == "length":
        parts.append("cut at max tokens")
    return " · ".join(parts)
