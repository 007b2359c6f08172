"""Checks for chat fine-tuning data: every check of OpenAI's data-prep notebook, plus ours.

The notebook's checks (codes in brackets): not a dict [not_a_dict], missing messages list
[missing_messages], message missing role/content [message_missing_key], unrecognized key
[message_unrecognized_key], unrecognized role [unrecognized_role], missing content [missing_content],
no assistant message [missing_assistant_message]. Ours: content not a string, blank content, weight not
0/1, over the model's training context, fewer than 10 (error) / 50 (warning) examples, no system / user
message, exact duplicates, unknown top-level keys. Token counts, epochs and cost come from
pipeline.tokens, counted the notebook's way.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline import tokens
from pipeline.dataset import formats
from pipeline.dataset.jsonl import UnusableJSON, check_value, plainly_usable
from pipeline.dataset.problems import Problem, problem
from pipeline.dataset.stats import ExampleFacts, data_prep_stats, example_facts
from pipeline.models import model_info

#: The message roles OpenAI's chat fine-tuning accepts (not the app's model roles, pipeline.endpoints.ROLES).
MESSAGE_ROLES = frozenset({"system", "user", "assistant", "tool", "function"})
MESSAGE_KEYS = frozenset({"role", "content", "name", "function_call", "tool_calls", "tool_call_id", "weight"})
EXAMPLE_KEYS = frozenset({"messages", "tools", "functions", "parallel_tool_calls"})
MIN_EXAMPLES = 10
RECOMMENDED_EXAMPLES = 50
DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"


@dataclass
class ValidationReport:
    model: str
    n_examples: int
    #: Each {line, code, message, severity}; sorted by line (dataset-wide problems, line None, first).
    errors: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    #: Problems of each example, parallel to the examples validated.
    example_problems: list[list[Problem]] = field(default_factory=list)
    #: Problems about the file or the whole dataset (not tied to one example).
    dataset_problems: list[Problem] = field(default_factory=list)
    token_lengths: list[int] = field(default_factory=list)
    billing_tokens_per_epoch: int = 0
    n_epochs: int = tokens.TARGET_EPOCHS
    estimated_cost_usd: float | None = None
    tokens_approximate: bool = False
    encoding: str = "cl100k_base"
    context_limit: int = 0
    readable: bool = True
    n_unparsed: int = 0
    #: The data-prep notebook's report (pipeline.dataset.stats.data_prep_stats).
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def problems(self) -> list[Problem]:
        return self.dataset_problems + [p for probs in self.example_problems for p in probs]

    @property
    def total_tokens(self) -> int:
        return sum(self.token_lengths)

    def counts(self) -> dict[str, int]:
        """How many problems of each code."""
        return dict(Counter(p["code"] for p in self.errors + self.warnings))

    def to_json(self) -> dict[str, Any]:
        """The CLI's --json object (keys are a stable contract)."""
        return {
            "examples": self.n_examples, "errors": self.errors, "warnings": self.warnings,
            "billing_tokens_per_epoch": self.billing_tokens_per_epoch, "n_epochs": self.n_epochs,
            "estimated_cost_usd": self.estimated_cost_usd, "tokens_approximate": self.tokens_approximate,
            "model": self.model, "encoding": self.encoding, "context_limit": self.context_limit,
            "total_tokens": self.total_tokens, "unparsed_lines": self.n_unparsed, "stats": self.stats,
            "readable": self.readable,
        }


def check_example(ex: Any, line: int, index: int, text: str | None = None) -> list[Problem]:
    """The per-example format checks (the notebook's and ours), without tokens or duplicates. `text`:
    the JSON the example was parsed from, when known (its text checks can then be judged from it)."""
    if not isinstance(ex, dict):
        return [problem("not_a_dict", f"Line {line} is a JSON {type(ex).__name__}, not an object. Each line must "
                        'be {"messages": [...]}.', line, index)]
    messages = ex.get("messages")
    if not messages:
        return [problem("missing_messages", f'Line {line} has no "messages" list (or it is empty). Add '
                        '"messages": [{"role": "user", ...}, {"role": "assistant", ...}].', line, index)]
    if not isinstance(messages, list):
        return [problem("messages_not_a_list", f'Line {line}: "messages" must be a list of message objects, '
                        f"not a {type(messages).__name__}.", line, index)]
    try:  # examples from the draft or edits too, not only files: text the trainer cannot encode
        if text is None or not plainly_usable(text):
            check_value(ex)
    except UnusableJSON as exc:
        return [problem(exc.code, f"Line {line} cannot be used: {exc}.", line, index)]
    found: list[Problem] = []
    extra = [k for k in ex if k not in EXAMPLE_KEYS]
    if extra:
        found.append(problem("unrecognized_example_key", f"Line {line} has key(s) {', '.join(map(repr, extra))} "
                             "that OpenAI ignores or rejects. Remove them, or keep them only for your own use.",
                             line, index))
    roles = set()
    weights = []
    for j, m in enumerate(messages, start=1):
        if not isinstance(m, dict):
            found.append(problem("message_not_a_dict", f"Line {line}, message {j} is not an object. Use "
                                 '{"role": ..., "content": ...}.', line, index))
            continue
        role = m.get("role")
        if not isinstance(role, str):  # a list or dict here must not crash the set below
            role = None if role is None else json.dumps(role, default=str)
        roles.add(role)
        tool_call = "tool_calls" in m or "function_call" in m
        if "role" not in m or ("content" not in m and not tool_call):
            missing = "role" if "role" not in m else "content"
            found.append(problem("message_missing_key", f'Line {line}, message {j} has no "{missing}". Every '
                                 'message needs "role" and "content".', line, index))
        if len(m) > 2 or "role" not in m or "content" not in m:
            odd = [k for k in m if k not in MESSAGE_KEYS]
            if odd:
                found.append(problem("message_unrecognized_key", f"Line {line}, message {j} has unknown key(s) "
                                     f"{', '.join(map(repr, odd))}. Allowed: {', '.join(sorted(MESSAGE_KEYS))}.",
                                     line, index))
        if role not in MESSAGE_ROLES and "role" in m:
            found.append(problem("unrecognized_role", f"Line {line}, message {j} has role {role!r}. Use one of "
                                 "system, user, assistant (or tool/function for tool calls).", line, index))
        content = m.get("content")
        if isinstance(content, str):
            if not content.strip() and not tool_call:
                found.append(problem("blank_content", f"Line {line}, message {j} ({role}) is blank. Write the "
                                     "text or delete the message.", line, index))
        elif content is None:
            if not tool_call and "content" in m:
                found.append(problem("missing_content", f"Line {line}, message {j} ({role}) has no content. "
                                     "Add the text.", line, index))
        elif not _content_parts_ok(content):
            found.append(problem("content_not_string", f"Line {line}, message {j} ({role}) has content of type "
                                 f"{type(content).__name__}; it must be a string. Put the text in quotes.",
                                 line, index))
        if "weight" in m:
            w = m["weight"]
            weights.append(w)
            if type(w) is not int or w not in (0, 1) or role != "assistant":
                found.append(problem("invalid_weight", f"Line {line}, message {j}: weight {w!r} is invalid. "
                                     "Only assistant messages take a weight, and it must be 0 or 1.", line, index))
    if "assistant" not in roles:
        found.append(problem("missing_assistant_message", f"Line {line} has no assistant message, so there is "
                             "nothing to learn. Add the answer as an assistant message.", line, index))
    elif weights and all(w == 0 for w in weights) and len(weights) == sum(
            1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant"):
        found.append(problem("all_weights_zero", f"Line {line}: every assistant message has weight 0, so the "
                             "example teaches nothing. Set weight 1 on the answer to learn.", line, index))
    if "system" not in roles:
        found.append(problem("missing_system_message", f"Line {line} has no system message. Fine if intended; "
                             "a system prompt used in training should also be used when chatting.", line, index))
    if "user" not in roles:
        found.append(problem("missing_user_message", f"Line {line} has no user message. Add what the user asks.",
                             line, index))
    return found + formats.check_tool_calls(ex, line, index)


def _content_parts_ok(content: Any) -> bool:
    """OpenAI's vision fine-tuning takes a list of typed parts; anything else that is not a string is wrong."""
    return isinstance(content, list) and bool(content) and all(
        isinstance(p, dict) and p.get("type") in ("text", "image_url") for p in content)


def dedupe_key(ex: Any) -> str:
    """Two examples with the same key are exact duplicates (key order inside objects aside)."""
    return json.dumps(ex, sort_keys=True, ensure_ascii=False, default=str)


def validate_examples(examples: Sequence[Any], model: str = DEFAULT_MODEL, *, n_epochs: int | None = None,
                      line_numbers: Sequence[int] | None = None, schema: dict | None = None) -> ValidationReport:
    """Check examples for fine-tuning `model` and estimate tokens, epochs and cost.

    `line_numbers` maps each example to its 1-based source line (default: 1..n, as in the JSONL written
    from these examples). `schema`: the JSON schema every answer must fit (a structured-output dataset).
    Never raises for bad data: everything wrong becomes a problem.
    """
    lines = list(line_numbers) if line_numbers is not None else list(range(1, len(examples) + 1))
    if len(lines) != len(examples):
        raise ValueError("line_numbers must have one entry per example")
    counter = tokens.counter_for(model)
    checks = [check_example(ex, lines[i], i) for i, ex in enumerate(examples)]
    keys = [dedupe_key(ex) for ex in examples]
    return assemble_report(model, counter, examples, lines, checks, keys, example_tokens(examples, counter),
                           n_epochs=n_epochs, schema=schema)


def example_tokens(examples: Sequence[Any], counter: tokens.TokenCounter) -> list[int]:
    """Tokens of each example: its messages, counted the notebook's way, plus its tool definitions
    (part of what the model reads, and OpenAI bills them as training tokens)."""
    lengths = tokens.count_examples([messages_of(ex) for ex in examples], counter)
    return [n + tokens.count_tools(ex.get("tools") if isinstance(ex, dict) else None, counter)
            for n, ex in zip(lengths, examples, strict=True)]


def assemble_report(model: str, counter: tokens.TokenCounter, examples: Sequence[Any], lines: Sequence[int],
                    checks: Sequence[Sequence[Problem]], keys: Sequence[str | bytes], lengths: Sequence[int], *,
                    n_epochs: int | None = None, schema: dict | None = None, extra: Sequence[Problem] = (),
                    facts: Sequence[ExampleFacts] | None = None) -> ValidationReport:
    """The report from what each example says on its own (its `check_example` problems, `dedupe_key`
    and `example_tokens`) plus what needs all examples at once (duplicates, over the model's limit, too
    few, schema and labels, epochs, cost, statistics). The Dataset tab caches the per-example part and
    calls this, so a rule about one example belongs in `check_example`. `extra` joins the dataset-wide
    problems (the draft's unreadable rows); `facts` are the examples' `stats.example_facts` when the
    caller keeps them."""
    info = model_info(model)
    per_example = [list(found) for found in checks]  # copies: the caller's lists may be cached
    seen: dict[str, int] = {}
    for i, key in enumerate(keys):
        first = seen.setdefault(key, i)
        if first != i:
            per_example[i].append(problem("duplicate", f"Line {lines[i]} repeats line {lines[first]} exactly. "
                                          "Remove it (Dedupe) so it does not weigh twice.", lines[i], i))
    lengths = list(lengths)
    limit = info.training_context
    for i, n in enumerate(lengths):
        if n > limit:
            per_example[i].append(problem("too_long", f"Line {lines[i]} is {n:,} tokens, over the {limit:,}-token "
                                          f"training limit of {model}; it will be cut. Shorten or split it.",
                                          lines[i], i))
    dataset: list[Problem] = []
    n = len(examples)
    if n < MIN_EXAMPLES:
        dataset.append(problem("too_few_examples", f"Only {n} example(s): OpenAI needs at least {MIN_EXAMPLES}. "
                               "Add more (50-100 usually show clear gains)."))
    elif n < RECOMMENDED_EXAMPLES:
        dataset.append(problem("few_examples", f"{n} examples: at least {RECOMMENDED_EXAMPLES} usually give "
                               "clearly better results. Consider generating more."))
    labels = None
    if schema is not None:
        why = formats.schema_error(schema)
        if why:
            dataset.append(problem("invalid_schema", f"The dataset's schema is not a valid JSON schema ({why}). "
                                   "Fix it; answers were not checked against it."))
        else:
            for found, more in zip(per_example, formats.check_structured_answers(examples, lines, schema),
                                   strict=True):
                found += more
    else:
        facts = facts if facts is not None else example_facts(examples, counter)
        labels = formats.label_counts(examples, [f.final_answer for f in facts])
        skewed = formats.imbalance_problem(labels) if labels else None
        if skewed:
            dataset.append(skewed)
    epochs = n_epochs if n_epochs else tokens.default_epochs(n)
    billing = tokens.billing_tokens(lengths, limit)
    report = ValidationReport(
        model=model, n_examples=n, example_problems=per_example, dataset_problems=dataset + list(extra),
        token_lengths=lengths, billing_tokens_per_epoch=billing, n_epochs=epochs,
        estimated_cost_usd=tokens.training_cost_usd(model, billing, epochs),
        tokens_approximate=counter.approximate, encoding=counter.encoding, context_limit=limit,
        stats=data_prep_stats(examples, lengths, counter, context_limit=limit, billing_tokens_per_epoch=billing,
                              n_epochs=epochs, labels=labels, facts=facts))
    _fill_lists(report)
    return report


def messages_of(ex: Any) -> list:
    messages = ex.get("messages") if isinstance(ex, dict) else None
    return messages if isinstance(messages, list) else []


def _fill_lists(report: ValidationReport, extra: Sequence[Problem] = ()) -> None:
    allp = sorted([*report.dataset_problems, *extra, *(p for ps in report.example_problems for p in ps)],
                  key=lambda p: -1 if p.line is None else p.line)
    report.errors = [p.as_dict() for p in allp if p.severity == "error"]
    report.warnings = [p.as_dict() for p in allp if p.severity == "warning"]
