"""Stakeholder extras: blind voting, conversation export, and the few-shot preset for the base pane."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from pathlib import Path

from pipeline import drafts, workspace
from pipeline.chat.session import ChatSession, PaneConfig, Params
from pipeline.chat.tools import readable
from pipeline.errors import InputError

LETTERS = "ABCDEFGH"
VOTE_CHOICES = ("A", "B", "C", "tie", "all bad")
FEW_SHOT_K = 3


# ---- blind mode -----------------------------------------------------------------------------
def start_blind(session: ChatSession, rng: random.Random | None = None) -> None:
    """Shuffle which model answers in which column and start a fresh conversation."""
    order = list(range(session.n))
    (rng or random.Random()).shuffle(order)
    session.clear()
    session.blind_order, session.blind_revealed = order, False


def stop_blind(session: ChatSession) -> None:
    session.clear()
    session.blind_order, session.blind_revealed = None, False


def reveal(session: ChatSession, configs: Sequence[PaneConfig]) -> dict[str, str]:
    """Letter -> "label (endpoint: model)" for the current blind round."""
    cols = session.effective(configs)
    return {LETTERS[j]: f"{c.label} ({c.endpoint}: {c.model})" for j, c in enumerate(cols)}


def votes_path(visitor_id: str) -> Path:
    return workspace.visitor_dir(visitor_id, "chat") / "votes.jsonl"


def record_vote(visitor_id: str, session: ChatSession, configs: Sequence[PaneConfig], choice: str) -> dict:
    """Append the vote with the hidden mapping to the visitor's votes.jsonl and reveal the names."""
    if session.blind_order is None:
        raise InputError("Blind mode is off: switch it on, ask a question, then vote.")
    if choice not in VOTE_CHOICES:
        raise InputError(f"Vote for one of {', '.join(VOTE_CHOICES)}.")
    if not any(session.histories):
        raise InputError("Ask a question first, then vote for the best answer.")
    if session.blind_revealed:
        raise InputError("This round was already voted on; start a new blind round to vote again.")
    mapping = reveal(session, configs)
    cols = session.effective(configs)
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "vote": choice,
              "winner": {"label": cols[LETTERS.index(choice)].label, "model": cols[LETTERS.index(choice)].model}
              if choice in LETTERS else None,
              "mapping": mapping,
              "prompts": [m["content"] for m in session.histories[0] if m["role"] == "user"],
              "answers": {LETTERS[j]: [readable(m) for m in h if m["role"] == "assistant"]
                          for j, h in enumerate(session.histories)}}
    with votes_path(visitor_id).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    session.blind_revealed = True
    return record


def load_votes(visitor_id: str) -> list[dict]:
    path = votes_path(visitor_id)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---- export ---------------------------------------------------------------------------------
def export_json(session: ChatSession, configs: Sequence[PaneConfig], params: Params) -> dict:
    cols = session.effective(configs)
    return {
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "system": params.system, "temperature": params.temperature, "max_tokens": params.max_tokens,
        "tools": params.tools, "tool_choice": params.tool_choice if params.tools else None,
        "panes": [{"label": c.label, "endpoint": c.endpoint, "model": c.model,
                   "few_shot": list(c.few_shot), "messages": session.histories[j],
                   "last_metrics": session.metrics[j]}
                  for j, c in enumerate(cols)],
    }


def export_markdown(session: ChatSession, configs: Sequence[PaneConfig], params: Params) -> str:
    data = export_json(session, configs, params)
    lines = [f"# Distill Studio conversation ({data['exported_at']})", ""]
    if params.system.strip():
        lines += [f"**System prompt:** {params.system}", ""]
    lines += [f"Temperature {params.temperature}, max tokens {params.max_tokens}.", ""]
    if params.tools:
        names = ", ".join(f"`{t['function']['name']}`" for t in params.tools)
        lines += [f"**Tools:** {names} (tool choice: {params.tool_choice}).", ""]
    for pane in data["panes"]:
        shot = f", {len(pane['few_shot']) // 2} few-shot examples" if pane["few_shot"] else ""
        lines += [f"## {pane['label']} — {pane['endpoint']}: `{pane['model']}`{shot}", ""]
        for m in pane["messages"]:
            who = {"user": "**You:**", "tool": "**Tool result (you):**"}.get(m["role"], "**Model:**")
            note = " _(error)_" if m.get("error") else " _(stopped)_" if m.get("stopped") else ""
            lines += [f"{who}{note} {readable(m)}", ""]
    return "\n".join(lines)


def write_exports(visitor_id: str, session: ChatSession, configs: Sequence[PaneConfig],
                  params: Params) -> tuple[Path, Path]:
    """Both export files in the visitor's workspace, ready to download."""
    if not any(session.histories):
        raise InputError("The conversation is empty: nothing to export yet.")
    folder = workspace.visitor_dir(visitor_id, "chat", "exports")
    stem = time.strftime("conversation-%Y%m%d-%H%M%S", time.gmtime())
    md, js = folder / f"{stem}.md", folder / f"{stem}.json"
    md.write_text(export_markdown(session, configs, params), encoding="utf-8")
    js.write_text(json.dumps(export_json(session, configs, params), indent=2, ensure_ascii=False), encoding="utf-8")
    return md, js


# ---- few-shot preset ------------------------------------------------------------------------
def few_shot_messages(examples: Sequence[dict], k: int = FEW_SHOT_K) -> tuple[dict, ...]:
    """User/assistant turns of the first `k` usable examples (their system prompts are dropped:
    the pane's shared system prompt applies)."""
    out: list[dict] = []
    used = 0
    for ex in examples:
        turns = [{"role": m["role"], "content": m["content"]} for m in ex.get("messages", [])
                 if isinstance(m, dict) and m.get("role") in ("user", "assistant")
                 and isinstance(m.get("content"), str)]
        if len(turns) >= 2 and turns[-1]["role"] == "assistant":
            out += turns
            used += 1
        if used >= k:
            break
    return tuple(out)


def few_shot_examples(visitor_id: str | None, sample_path: Path | None = None) -> list[dict]:
    """The visitor's draft when it has examples, else a sample file (may be empty)."""
    if visitor_id:
        draft = drafts.load_draft(visitor_id)
        if draft:
            return draft
    if sample_path and sample_path.exists():
        return [json.loads(line) for line in sample_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return []
