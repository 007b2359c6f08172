"""`python -m pipeline validate PATH [--model M] [--epochs N] [--json]`.

Exit 0 when there is no error, 1 when there are errors, 2 when the file cannot be read at all.
--json prints one object: examples, errors, warnings (lists of {line, code, message, severity}),
billing_tokens_per_epoch, n_epochs, estimated_cost_usd, tokens_approximate (+ model, encoding,
context_limit, total_tokens, unparsed_lines, readable), and `stats`: the data-prep report (messages
and tokens per example, missing system/user messages, over the limit, labels, the billing line).
--schema FILE (or a `<name>.schema.json` beside the data, as the structured-output template writes)
checks every answer against that JSON schema.
Always exactly one object, whatever the input: a missing file, a folder, an unreadable schema, bad
options or anything unexpected give the same keys, with `errors` saying why and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from pipeline.commands import emit_json
from pipeline.dataset import DEFAULT_MODEL, ValidationReport, validate_file
from pipeline.dataset.problems import problem
from pipeline.errors import DistillError
from pipeline.models import pricing_source

#: Problems of one code listed before "... and N more" in the human output.
SHOWN_PER_CODE = 5


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a chat fine-tuning dataset; count tokens, epochs and cost",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", help="JSONL, JSON array, CSV/TSV, Parquet, or a saved `datasets` folder")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"base model to fine-tune (default {DEFAULT_MODEL})")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: what OpenAI picks for this size)")
    p.add_argument("--system-prompt", default=None, help="system prompt for converted prompt/completion or CSV rows")
    p.add_argument("--schema", default=None, help="JSON schema every answer must fit (default: NAME.schema.json "
                   "beside the data, when there is one)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=run)


def attached_schema(data_path: str, flag: str | None) -> tuple[dict | None, str | None]:
    """(schema, None), or (None, why it cannot be read). The flag's file, else a sidecar beside the data."""
    path = Path(flag) if flag else Path(data_path).with_suffix(".schema.json")
    if not flag and not path.is_file():
        return None, None
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"cannot read the schema {path}: {exc}"


def unreadable_report(model: str, code: str, message: str) -> ValidationReport:
    """The report of input that could not be validated at all (same keys as any other report)."""
    report = ValidationReport(model=model, n_examples=0, readable=False,
                              dataset_problems=[problem(code, message)])
    report.errors = [p.as_dict() for p in report.dataset_problems]
    return report


def _validate(args: argparse.Namespace) -> ValidationReport:
    if args.epochs is not None and not 1 <= args.epochs <= 50:
        return unreadable_report(args.model, "unreadable_file", "--epochs must be between 1 and 50.")
    try:
        schema, why = attached_schema(args.path, args.schema)
        if why:
            return unreadable_report(args.model, "unreadable_file", f"{why}. Give a JSON schema file with --schema.")
        return validate_file(args.path, args.model, args.epochs, system_prompt=args.system_prompt, schema=schema)
    except DistillError as exc:  # a missing file, a folder that is no dataset, ...
        return unreadable_report(args.model, "unreadable_file", str(exc))
    except (OSError, MemoryError, RecursionError, ValueError) as exc:
        return unreadable_report(args.model, "unreadable_file",
                                 f"{args.path} could not be read ({type(exc).__name__}: {exc}).")


def run(args: argparse.Namespace) -> int:
    try:
        report = _validate(args)
    except Exception as exc:  # noqa: BLE001 - the contract: one JSON object whatever happens
        report = unreadable_report(args.model, "internal_error",
                                   f"Validation stopped unexpectedly ({type(exc).__name__}: {exc}). "
                                   "Please report it with the file.")
    if args.json:
        emit_json(report.to_json())
    elif not report.readable and not report.n_examples:
        print(render(report, args.path), file=sys.stderr)
    else:
        print(render(report, args.path))
    if not report.readable:
        return 2
    return 1 if report.errors else 0


def render(report: ValidationReport, path: str) -> str:
    """A readable summary: the figures, then problems grouped by code."""
    approx = " (approximate: counted with " + report.encoding + ")" if report.tokens_approximate else ""
    usd = report.estimated_cost_usd
    cost = "unknown (no training price for this model)" if usd is None else \
        f"${usd:,.2f}" if usd >= 1 else f"${usd:.4f}"
    lines = [
        f"{path}: {report.n_examples} examples, {len(report.errors)} errors, {len(report.warnings)} warnings",
        f"tokens: {report.total_tokens:,} total, {report.billing_tokens_per_epoch:,} billed per epoch{approx}",
        f"epochs: {report.n_epochs}   estimated training cost for {report.model}: {cost}",
        f"prices: {pricing_source()}",
    ]
    if not report.readable and not report.n_examples:
        return "\n".join(f"error: {p['message']}" for p in report.errors)
    if report.stats.get("tokens_per_example"):
        lines += _stats_lines(report.stats)
    for label, items in (("ERROR", report.errors), ("warning", report.warnings)):
        by_code: dict[str, list[dict]] = defaultdict(list)
        for p in items:
            by_code[p["code"]].append(p)
        for code, probs in by_code.items():
            lines.append(f"{label} {code} ({len(probs)}):")
            lines += [f"  {p['message']}" for p in probs[:SHOWN_PER_CODE]]
            if len(probs) > SHOWN_PER_CODE:
                rest = [str(p["line"]) for p in probs[SHOWN_PER_CODE:SHOWN_PER_CODE + 20]]
                more = "" if len(probs) <= SHOWN_PER_CODE + 20 else ", ..."
                lines.append(f"  ... and {len(probs) - SHOWN_PER_CODE} more (lines {', '.join(rest)}{more})")
    lines.append("OK: ready to fine-tune." if not report.errors else "Fix the errors above, then validate again.")
    return "\n".join(lines)


def _stats_lines(stats: dict) -> list[str]:
    """The notebook's figures, one line each."""
    def spread(d: dict) -> str:
        return ", ".join(f"{k} {d[k]:,}" for k in ("min", "max", "mean", "median", "p5", "p95"))

    out = [f"messages per example: {spread(stats['messages_per_example'])}",
           f"tokens per example: {spread(stats['tokens_per_example'])}",
           f"assistant tokens per example: {spread(stats['assistant_tokens_per_example'])}",
           f"missing system message: {stats['missing_system']}, missing user message: {stats['missing_user']}, "
           f"over the {stats['token_limit']:,}-token limit: {stats['over_token_limit']}"]
    if stats.get("labels"):
        out.append("labels: " + ", ".join(f"{k} {v}" for k, v in stats["labels"].items()))
    return [*out, stats["billing_line"]]
