"""The exact messages sent to the teacher for one request.

Diversity comes from seeds (a topic and a difficulty drawn per request from the template's lists, by a
generator seeded with the run seed and the request number, so a run is reproducible) and from a
*bounded* sample of earlier examples the teacher is told not to repeat: at most `SAMPLE_SIZE`
questions of at most `SAMPLE_CHARS` characters each, so prompts never grow with the run.
"""

from __future__ import annotations

import json
import random
from typing import Any

from pipeline.errors import InputError
from pipeline.generate.dedup import user_text
from pipeline.generate.tasks import effective
from pipeline.generate.templates import Template, render, seed_lists

SAMPLE_SIZE = 3
SAMPLE_CHARS = 200
JSON_INSTRUCTION = ("Answer with one JSON object and nothing else (no code fence, no comment), matching "
                    "this JSON schema:\n{schema}")


def request_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"{seed}:{index}")


def earlier_block(examples: list[dict], rng: random.Random, k: int = SAMPLE_SIZE) -> str:
    if not examples or k <= 0:
        return ""
    picked = rng.sample(examples, min(k, len(examples)))
    lines = []
    for ex in picked:
        text = " ".join(user_text(ex).split())
        lines.append("- " + (text[:SAMPLE_CHARS] + "..." if len(text) > SAMPLE_CHARS else text))
    return "Earlier examples (do not repeat them or write close variants):\n" + "\n".join(lines) + "\n"


def with_schema(system: str, schema: dict[str, Any]) -> str:
    """The schema goes into the prompt too: endpoints without structured output still get it."""
    return system.rstrip() + "\n\n" + JSON_INSTRUCTION.format(schema=json.dumps(schema, ensure_ascii=False))


def build_messages(template: Template, variables: dict[str, str], *, seed: int, index: int,
                   earlier: list[dict] | None = None, source: dict | None = None,
                   sample_size: int = SAMPLE_SIZE) -> list[dict]:
    """System + user messages for request number `index` of a run."""
    template = effective(template, variables)
    rng = request_rng(seed, index)
    values: dict[str, Any] = dict(variables)
    for key, options in seed_lists(template, variables).items():
        if key in template.balanced and options:  # in turn, from a seeded start: every label as often
            values[key] = options[(index + seed) % len(options)]
            rng.random()  # keep the other seeds' draws where they were
        else:
            values[key] = rng.choice(options) if options else ""
    values["earlier"] = earlier_block(earlier or [], rng, sample_size)
    if source is not None:
        msgs = source["messages"]
        last_user = max(i for i, m in enumerate(msgs) if m.get("role") == "user")
        values["source_user"] = msgs[last_user].get("content") or ""
        after = [m for m in msgs[last_user + 1:] if m.get("role") == "assistant"]
        values["source_assistant"] = (after[0].get("content") or "") if after else "(none)"
    where = f"Template '{template.name}'"
    system = render(template.system_prompt, values, where)
    user = render(template.user_prompt, values, where)
    return [{"role": "system", "content": with_schema(system, template.schema)},
            {"role": "user", "content": user.strip()}]


def setup_messages(template: Template, variables: dict[str, str]) -> list[dict]:
    if template.setup is None:
        raise InputError(f"Template '{template.name}' has no setup step to build messages for.")
    where = f"Template '{template.name}' setup"
    return [{"role": "system", "content": with_schema(render(template.setup.system_prompt, variables, where),
                                                      template.setup.schema)},
            {"role": "user", "content": render(template.setup.user_prompt, variables, where)}]
