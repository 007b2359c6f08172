"""`python -m pipeline generate`: a teacher model writes chat examples from a template into a JSONL file.

Re-running with the same --out resumes: only the missing examples are made. Ctrl-C stops at once and
keeps every finished example. Exit 0 when the file holds all requested examples, 1 otherwise.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from pipeline import batch
from pipeline.commands import add_endpoint_flags, emit_json, endpoint_name, openai_client, progress
from pipeline.commands.batchflow import add_wait_flags, print_report, submit_and_follow
from pipeline.errors import InputError


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("generate", help="write training examples with a teacher model",
                              description=__doc__)
    p.add_argument("--template", required=True,
                   help="template name (reasoning, knowledge, paraphrase, tone, custom, or your own in the "
                        "workspace templates/ folder) or path to a template .json file")
    p.add_argument("--n", type=int, required=True, help="number of examples the output file should hold")
    p.add_argument("--out", required=True, help="output JSONL (resumed if it exists)")
    p.add_argument("--teacher", help="teacher model id (default: gpt-4.1 on OpenAI, the local model on the "
                                     "embedded backend, else the endpoint's first model)")
    add_endpoint_flags(p)
    p.add_argument("--concurrency", type=int, default=8, help="parallel requests (default 8)")
    p.add_argument("--budget-usd", type=float, help="stop before spending more than this")
    p.add_argument("--seed", type=int, default=0, help="seed for topic/difficulty picks (default 0)")
    p.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                   help="template variable, e.g. --var voice='dry and witty' (repeatable; @FILE reads a file)")
    p.add_argument("--temperature", type=float, default=0.9)
    p.add_argument("--max-tokens", type=int, help="per teacher reply (default: the template's)")
    p.add_argument("--check", action="store_true",
                   help="reasoning templates: solve each problem again, keep it only if the answers agree")
    p.add_argument("--check-model", help="model for --check (default: the teacher)")
    p.add_argument("--source", help="paraphrase: the chat JSONL whose user turns are rewritten")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default 120)")
    p.add_argument("--max-retries", type=int, default=200, help="retries allowed for the whole run")
    p.add_argument("--estimate-only", action="store_true", help="print the cost estimate and stop")
    p.add_argument("--batch", action="store_true",
                   help="send the requests as one batch (Batch API: half price, results within 24 h); prints "
                        "the batch id, see `python -m pipeline batches`")
    add_wait_flags(p)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(run=run)


def parse_vars(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--var takes KEY=VALUE, got '{item}'.")
        if value.startswith("@"):
            try:
                value = Path(value[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                raise InputError(f"--var {key}: cannot read {value[1:]} ({exc.strerror}).") from exc
        out[key.strip()] = value
    return out


def default_teacher(args: Any) -> str:
    from pipeline.endpoints import OPENAI_ROLE_DEFAULTS

    if args.teacher:
        return args.teacher
    if not (args.base_url or os.environ.get("OPENAI_BASE_URL")) and (args.api_key or os.environ.get("OPENAI_API_KEY")):
        return OPENAI_ROLE_DEFAULTS["teacher"]
    # A sync client: the async one must live in the single event loop of the run.
    models = openai_client(args).models.list().data
    if not models:
        raise InputError("The endpoint lists no models; name the teacher with --teacher.")
    return models[0].id


def _run_batch(args: Any, config: Any) -> int:
    """Build the request file, submit it; with --wait follow it and collect into --out."""
    from pipeline.generate.store import load_existing

    client = openai_client(args, max_retries=2)
    record = batch.build_generation(config, visitor=None, endpoint=endpoint_name(args), client=client)
    report = submit_and_follow(record, client, args)
    if report is None:
        return 0
    held = len(load_existing(config.out))
    if args.json:
        emit_json({"batch": batch.load_batch(None, record.id).to_json(), "collected": report.to_json(),
                   "written": held, "requested": config.n, "out": str(config.out)})
    else:
        print_report(report)
        print(f"{held}/{config.n} examples in {config.out}.")
    return 0 if held >= config.n else 1


def run(args: Any) -> int:
    from pipeline.generate import GenerationConfig, RetryPolicy, estimate_run, load_template, run_generation
    from pipeline.generate.store import read_examples

    if args.n < 1 or args.concurrency < 1:
        raise InputError("--n and --concurrency must be at least 1.")
    template = load_template(args.template)
    sources = read_examples(Path(args.source)) if args.source else None
    if template.source and not sources:
        raise InputError(f"Template '{template.name}' rewrites existing examples: give them with --source FILE.")
    client = openai_client(args, async_=True)
    model = default_teacher(args)
    config = GenerationConfig(
        template=template, n=args.n, out=Path(args.out), model=model, variables=parse_vars(args.var),
        concurrency=args.concurrency, temperature=args.temperature, budget_usd=args.budget_usd,
        seed=args.seed, check=args.check, check_model=args.check_model, sources=sources,
        max_tokens=args.max_tokens, endpoint=args.base_url or os.environ.get("OPENAI_BASE_URL") or "default",
        retry=RetryPolicy(timeout=args.timeout, max_total_retries=args.max_retries),
    )
    est = estimate_run(config)
    progress(f"Teacher {model}, template {template.name}. Estimate: {est.describe()}.")
    if args.estimate_only:
        if args.json:
            extra = {"batch_cost_usd": batch.batch_cost_usd(model, est.input_tokens, est.output_tokens)} \
                if args.batch else {}
            emit_json({"estimate": {**est.__dict__, **extra}, "teacher": model, "template": template.name})
        elif args.batch:
            cost = batch.batch_cost_usd(model, est.input_tokens, est.output_tokens)
            progress("At batch prices: " + (f"about ${cost:.4f}." if cost is not None else
                                            f"no batch price known for {model}."))
        return 0
    if args.batch:
        return _run_batch(args, config)
    last = [0.0]

    def show(status: Any) -> None:
        if time.monotonic() - last[0] >= 1.0 or status.state != "running":
            last[0] = time.monotonic()
            progress(f"[{status.written}/{status.requested}] {status.failed_parse} unparsed, "
                     f"{status.duplicates_dropped} duplicates, {status.retries} retries, ${status.cost_usd:.4f}")

    status = run_generation(config, client, on_progress=show)
    progress(status.message)
    if args.json:
        emit_json({**status.to_json(), "teacher": model, "template": template.name,
                   "estimated_cost_usd": est.cost_usd})
    else:
        review = f" Kept apart for review: {status.failures_out}" if Path(status.failures_out).exists() else ""
        print(f"{status.written}/{status.requested} examples in {status.out} "
              f"({status.failed_parse} unparsed, {status.duplicates_dropped} duplicates dropped, "
              f"{status.retries} retries, ${status.cost_usd:.4f}).{review}")
    return 0 if status.written == status.requested else 1
