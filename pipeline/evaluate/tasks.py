"""Scoring for the task formats: a label, a JSON object fitting a schema, a tool call.

- `label`: the answer is the expected class. Forgiving about case, markdown, punctuation and a
  "Label: x" wrapper; not about a second label in the answer ("billing or bug" names no class).
  Per-label precision, recall, F1 and the confusion matrix come from `label_report`.
- `json_schema`: the answer is valid JSON (a ```json fence is tolerated and noted), fits the item's
  schema, and equals the expected object; per-field accuracy says which fields were right.
- `tool_call`: the model called the expected tool with arguments equal after JSON normalisation
  (key order, whitespace, 1 vs 1.0), or made no call when none was expected ("no call").
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

TASK_SCORINGS = ("label", "json_schema", "tool_call")
NO_CALL = "no call"
#: Predictions that are not one of the labels are counted in this column of the confusion matrix.
OTHER = "(other)"

_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL | re.IGNORECASE)
_WRAPPER = re.compile(r"^(?:label|class|category|answer)\s*[:：=-]\s*", re.IGNORECASE)


@dataclass(frozen=True)
class TaskVerdict:
    correct: bool
    #: What was compared, for the drill-down (the label read, "valid, conforms, 3/4 fields", the call).
    extracted: str
    note: str = ""
    #: json_schema: {field: right?} for the expected object's top-level fields.
    fields: dict[str, bool] = field(default_factory=dict)


def _norm_label(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip().lower()
    text = re.sub(r"[*_`#>\"']", "", text)
    text = _WRAPPER.sub("", text.strip())
    return re.sub(r"\s+", " ", text).strip(" .,;:!?()[]{}")


def score_label(answer: str, expected: str, labels: Sequence[str] = ()) -> TaskVerdict:
    """The answer names the expected label (and no other of `labels`)."""
    got = _norm_label(answer)
    want = _norm_label(expected)
    if got == want:
        return TaskVerdict(True, expected)
    known = {_norm_label(lab): lab for lab in labels}
    named = [orig for norm, orig in known.items() if re.search(rf"(?<!\w){re.escape(norm)}(?!\w)", got)]
    if len(named) == 1:
        return TaskVerdict(_norm_label(named[0]) == want, named[0], note="label found inside a longer answer")
    note = "names several labels" if len(named) > 1 else "not one of the labels"
    return TaskVerdict(False, got[:40], note=note)


def label_report(expected: Sequence[str], predicted: Sequence[str], labels: Sequence[str] = ()) -> dict[str, Any]:
    """Per-label precision/recall/F1 (+ support), macro F1, accuracy, and the confusion matrix
    (rows: expected label; columns: predicted label, then OTHER for answers that named no label)."""
    order = list(dict.fromkeys([*labels, *expected]))
    columns = [*order, OTHER]
    index = {lab: i for i, lab in enumerate(order)}
    matrix = [[0] * len(columns) for _ in order]
    for exp, pred in zip(expected, predicted, strict=True):
        matrix[index[exp]][index.get(pred, len(order))] += 1
    per_label = {}
    for i, lab in enumerate(order):
        tp = matrix[i][i]
        predicted_as = sum(row[i] for row in matrix)
        support = sum(matrix[i])
        precision = tp / predicted_as if predicted_as else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[lab] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                          "support": support}
    scored = [v for v in per_label.values() if v["support"]]
    return {"labels": order, "columns": columns, "confusion": matrix, "per_label": per_label,
            "macro_f1": round(sum(v["f1"] for v in scored) / len(scored), 4) if scored else 0.0,
            "accuracy": round(sum(matrix[i][i] for i in range(len(order))) / max(1, len(expected)), 4)}


def _canon(value: Any) -> Any:
    """JSON normalisation: key order and 1 vs 1.0 do not matter; strings are compared as they are."""
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_canon(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def parse_json_answer(answer: str) -> tuple[Any, str]:
    """(value, note) from a model's answer; raises ValueError when it is not JSON."""
    text = answer.strip()
    note = ""
    fenced = _FENCE.match(text)
    if fenced:
        text, note = fenced.group(1).strip(), "wrapped in a code fence"
    try:
        return json.loads(text), note
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None


def score_json_schema(answer: str, expected: Any, schema: dict | None) -> TaskVerdict:
    """Valid JSON, fitting `schema` (when given), equal to `expected` (a JSON value or its text)."""
    from pipeline.dataset.formats import instance_errors

    want = json.loads(expected) if isinstance(expected, str) else expected
    try:
        got, note = parse_json_answer(answer)
    except ValueError as exc:
        return TaskVerdict(False, "invalid JSON", note=str(exc))
    errors = instance_errors(got, schema) if schema else []
    fields = ({k: k in got and _canon(got[k]) == _canon(v) for k, v in want.items()}
              if isinstance(want, dict) and isinstance(got, dict) else {})
    right = sum(fields.values())
    what = ("valid, conforms" if not errors else "valid, does not conform") + (
        f", {right}/{len(fields)} fields" if fields else "")
    note = "; ".join(x for x in [note, *errors[:1]] if x)
    return TaskVerdict(not errors and _canon(got) == _canon(want), what, note=note, fields=fields)


def _calls(message: Any) -> list[tuple[str, str]]:
    """[(name, arguments text)] of an SDK message or a dict message."""
    calls = getattr(message, "tool_calls", None) if not isinstance(message, dict) else message.get("tool_calls")
    out = []
    for c in calls or []:
        fn = c.get("function") if isinstance(c, dict) else getattr(c, "function", None)
        name = fn.get("name") if isinstance(fn, dict) else getattr(fn, "name", None)
        args = fn.get("arguments") if isinstance(fn, dict) else getattr(fn, "arguments", None)
        out.append((str(name), args if isinstance(args, str) else json.dumps(args)))
    return out


def expected_call(expected: Any) -> dict | None:
    """The expected call {"name", "arguments"} from a benchmark's `expected`, or None for "no call"."""
    value = expected
    if isinstance(expected, str):
        if expected.strip().lower() in (NO_CALL, "none", ""):
            return None
        value = json.loads(expected)
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ValueError('a tool_call item expects {"name": ..., "arguments": {...}} or "no call"')
    args = value.get("arguments") or {}
    return {"name": value["name"], "arguments": json.loads(args) if isinstance(args, str) else args}


def describe_call(name: str, arguments: str) -> str:
    return f"{name}({arguments})"


def score_tool_call(message: Any, expected: Any) -> TaskVerdict:
    """The first call is the expected tool with equal arguments; or no call when none was expected."""
    want = expected_call(expected)
    calls = _calls(message)
    if want is None:
        if not calls:
            return TaskVerdict(True, NO_CALL)
        return TaskVerdict(False, describe_call(*calls[0]), note="called a tool where none was expected")
    if not calls:
        return TaskVerdict(False, NO_CALL, note=f"expected a call to {want['name']}")
    name, args = calls[0]
    try:
        got_args = json.loads(args)
    except json.JSONDecodeError:
        return TaskVerdict(False, describe_call(name, args), note="the arguments are not JSON")
    if name != want["name"]:
        return TaskVerdict(False, describe_call(name, args), note=f"wrong tool (expected {want['name']})")
    if _canon(got_args) != _canon(want["arguments"]):
        return TaskVerdict(False, describe_call(name, args), note="right tool, different arguments")
    extra = " (and more calls)" if len(calls) > 1 else ""
    return TaskVerdict(True, describe_call(name, args) + extra)


def score_task(item: Any, text: str, message: Any) -> TaskVerdict:
    """Score one answer to a task item (a BenchItem with scoring in TASK_SCORINGS)."""
    if item.scoring == "label":
        return score_label(text, item.expected, item.labels)
    if item.scoring == "json_schema":
        return score_json_schema(text, item.expected, item.schema)
    return score_tool_call(message if message is not None else {}, item.expected)


def shown_answer(text: str, message: Any) -> str:
    """The answer as the drill-down shows it: the text, then each tool call as name(arguments)."""
    calls = [f"→ {describe_call(n, a)}" for n, a in _calls(message if message is not None else {})]
    return "\n".join([t for t in [text] if t] + calls)
