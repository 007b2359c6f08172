"""The body of each demo step (see steps.py for the contract)."""

from __future__ import annotations

import time
from pathlib import Path

from pipeline import config, drafts, endpoints
from pipeline.chat.streams import PaneSpec, stream_panes
from pipeline.dataset import read_dataset, split_examples
from pipeline.demo.context import StepContext, StepResult, check_cancel, demo_folder, is_local, keep_backup
from pipeline.demo.scenarios import openai_equivalent
from pipeline.errors import InputError
from pipeline.evaluate.bench import load_benchmark
from pipeline.evaluate.runner import Target, run_benchmark
from pipeline.evaluate.runs import save_results
from pipeline.evaluate.yours import hold_out_from_draft, made_path
from pipeline.finetune import jobs as ft
from pipeline.finetune.records import claim_model, claim_started, record_job, visitor_tag
from pipeline.finetune.session import start_job
from pipeline.finetune.watch import JobSnapshot, follow_job, progress_line
from pipeline.generate.runner import GenerationConfig, run_generation
from pipeline.generate.store import RunFiles
from pipeline.generate.templates import load_template
from pipeline.tokens import training_cost_usd, usage_cost_usd

# How often the demo asks for its job's progress. 1 s, not the tabs' 3 s: the end of the job (the next
# step waits for it) is seen 1 s sooner on average, and on the local backend a poll costs ~5 loopback
# requests. (It was 2 s.)
POLL_S = 1.0
VALIDATION_FRACTION = 0.1
# A provider gets a few calls at a time (rate limits). The local backend gets every request of a step
# at once: its engine decodes all of them together in one step per token, where 4 at a time left it
# decoding 2-4 rows per step for ~10 rounds of the longest answer (the benchmark: 36 answers).
PROVIDER_CONCURRENCY = 4


def step_concurrency(local: bool, requests: int) -> int:
    """How many of a step's `requests` are in flight at once (the rule above): all on the local backend."""
    return requests if local else PROVIDER_CONCURRENCY


def step_load(ctx: StepContext) -> StepResult:
    read = read_dataset(ctx.scenario.sample)
    backup = drafts.replace_draft(ctx.run.visitor_id, read.examples,
                                  source={"sample": ctx.scenario.sample.name, "demo": ctx.scenario.name})
    keep_backup(ctx, backup)
    kept = " Your previous table was kept; **Undo load** brings it back." if backup else ""
    ctx.say(f"Loaded {len(read.examples)} examples from {ctx.scenario.sample.name}.")
    return StepResult("load", f"Loaded **{len(read.examples)} examples** from `{ctx.scenario.sample.name}` "
                      f"into the Dataset table.{kept}", 0, cost_usd=0.0, equivalent_usd=0.0)


def step_augment(ctx: StepContext) -> StepResult:
    aug, visitor = ctx.scenario.augment, ctx.run.visitor_id
    teacher = endpoints.role(ctx.settings, "teacher")
    client = endpoints.make_client(ctx.settings, teacher.endpoint, async_=True)
    draft = drafts.load_draft(visitor)
    if not draft:
        raise InputError("The Dataset table is empty: run the 'Load the sample data' step first.")
    every = max(1, len(draft) // int(aug["sources"]))
    sources = draft[::every][: int(aug["sources"])]
    out = demo_folder(ctx) / f"{ctx.scenario.name}-paraphrase-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    local = is_local(ctx.settings, teacher.endpoint)
    config = GenerationConfig(template=load_template(aug["template"]), n=int(aug["n"]), out=out,
                              model=teacher.model, variables={"ways": str(aug["ways"])},
                              concurrency=step_concurrency(local, int(aug["n"])),
                              # Two rewordings of a short question take ~60 tokens; the template's 600 let
                              # a looping reply decode ten seconds for nothing (its whole items are kept).
                              max_tokens=int(aug["max_tokens"]) if aug.get("max_tokens") else None,
                              temperature=0.8, seed=0, sources=sources, avoid=draft,
                              max_failures=int(aug["n"]), endpoint=teacher.endpoint,
                              # The built-in teacher samples the same rewordings every time: how many
                              # replies fail (each costs another round of decoding) no longer varies
                              # from run to run (0-2 seen, 7-37 s).
                              sampling_seed=local)
    last = [""]

    def report(status) -> None:  # noqa: ANN001  (RunStatus)
        line = f"{status.written}/{status.requested} written, {status.failed_parse} unparsable, {status.retries} retries"
        if line != last[0]:
            last[0] = line
            ctx.progress(line)

    status = run_generation(config, client, on_progress=report, cancel=ctx.cancel)
    drafts.append_to_draft(visitor, status.new_examples)
    run_record = (RunFiles(out).load_state().get("runs") or [{}])[-1]
    drafts.update_meta(visitor, generation=[{**run_record, "added_to_draft": len(status.new_examples)}])
    equivalent = usage_cost_usd(openai_equivalent("teacher"), status.input_tokens, status.output_tokens) if local else None
    replies = "1 reply" if status.failed_parse == 1 else f"{status.failed_parse} replies"
    failed = f" {replies} did not parse; kept in `{out.stem}.failed.jsonl` for review." if status.failed_parse else ""
    if local and not status.new_examples:
        failed += (" The built-in 135M teacher wrote nothing usable this time; the demo goes on with the"
                   " hand-written set, which already asks each fact several ways.")
    if local:
        failed += (" The built-in 135M model keeps to the format (the local backend constrains its output to"
                   " the template's JSON schema) but its rewordings are rough: read them in the Dataset tab,"
                   " or add an OpenAI (or other) key in Settings for a GPT-4-class teacher.")
    samples = [ex["messages"][-2]["content"] for ex in status.new_examples[:3] if len(ex.get("messages", [])) >= 2]
    return StepResult("augment", f"The teacher (`{teacher.model}`) wrote **{len(status.new_examples)} reworded "
                      f"questions** (answers kept as they were) and they were added to the table.{failed}",
                      0, cost_usd=0.0 if local else status.cost_usd, equivalent_usd=equivalent,
                      details={"examples": samples, "status": status.state})


def step_holdout(ctx: StepContext) -> StepResult:
    """The benchmark from the scenario's own data: whole groups leave the draft (pipeline.evaluate.yours)."""
    if not drafts.load_draft(ctx.run.visitor_id):
        raise InputError("The Dataset table is empty: run the 'Load the sample data' step first.")
    choice, made = hold_out_from_draft(ctx.run.visitor_id, ctx.scenario.holdout, seed=0)
    ctx.run.benchmark = str(made_path(ctx.run.visitor_id, choice))
    s = made.split
    ctx.say(f"Held out {len(made.items)} examples ({s.groups_held_out} groups) as the benchmark.")
    return StepResult("holdout", f"Held out **{len(made.items)} examples** ({s.groups_held_out} of {s.groups_total} "
                      f"groups, nothing they teach left in training) as the benchmark `{choice}`, scored "
                      f"`{made.scoring}`; the fine-tune trains on the other {len(made.rest)}.", 0,
                      cost_usd=0.0, equivalent_usd=0.0, details={"benchmark": choice, "held_out": len(made.items)})


def _benchmark(ctx: StepContext) -> Path:
    """The benchmark this run scores: the one held out of the sample, else the scenario's shipped one."""
    return Path(ctx.run.benchmark) if ctx.run.benchmark else ctx.scenario.benchmark


def step_finetune(ctx: StepContext) -> StepResult:
    base = endpoints.role(ctx.settings, "base")
    client = endpoints.make_client(ctx.settings, base.endpoint)
    examples = drafts.load_draft(ctx.run.visitor_id)
    if len(examples) < 10:
        raise InputError("The Dataset table has fewer than 10 examples: run the 'Load the sample data' step first.")
    train, valid = split_examples(examples, VALIDATION_FRACTION, seed=0)
    local = is_local(ctx.settings, base.endpoint)
    provider = ctx.settings.endpoint(base.endpoint).provider
    started = start_job(client, train, base.model, validation=valid, suffix=ctx.scenario.suffix, seed=0,
                        auto_epochs=provider.auto_epochs(),
                        metadata=provider.job_metadata(visitor_tag(ctx.run.visitor_id)), name=ctx.scenario.name,
                        confirmed=local or ctx.confirm_cost, on_progress=ctx.say)
    job = started.job
    claim_started(ctx.run.visitor_id, started)
    ctx.run.job_id, ctx.run.job_endpoint = job.id, base.endpoint
    record_job(ctx.run.visitor_id, job.id, endpoint=base.endpoint, base_model=base.model, status=job.status)
    shown = [""]

    def show(snap: JobSnapshot) -> None:
        line = snap.warning or progress_line(snap)
        if line != shown[0]:
            shown[0] = line
            ctx.progress(line)

    snap = follow_job(client, job.id, poll_s=POLL_S, on_snapshot=show, stop=ctx.cancel)
    if not snap.finished:  # the visitor stopped the demo: the job stops too
        ft.cancel_job(client, job.id)
        check_cancel(ctx)
    record_job(ctx.run.visitor_id, job.id, status=snap.status, fine_tuned_model=snap.fine_tuned_model)
    claim_model(ctx.run.visitor_id, job.id, snap.fine_tuned_model)
    if snap.status != "succeeded":
        raise InputError(f"The fine-tuning job {job.id} ended {snap.status}: {snap.error or 'no reason given'}")
    ctx.run.fine_tuned_model = snap.fine_tuned_model
    pre = started.preflight
    epochs = getattr(ft.retrieve_job(client, job.id).hyperparameters, "n_epochs", None)
    epochs = epochs if isinstance(epochs, int) else pre.n_epochs  # what the provider really ran
    losses = [r["train_loss"] for r in snap.metrics if r.get("train_loss") is not None]
    trend = f" Training loss went from {losses[0]:.2f} to {losses[-1]:.2f}." if len(losses) >= 2 else ""
    equivalent = training_cost_usd(openai_equivalent("student"), pre.billing_tokens_per_epoch, epochs) \
        if local else None
    return StepResult("finetune", f"Fine-tuned `{base.model}` on **{len(train)} examples** ({len(valid)} held for "
                      f"validation), {epochs} epochs.{trend} New model: `{snap.fine_tuned_model}`.",
                      0, cost_usd=0.0 if local else pre.estimated_cost_usd, equivalent_usd=equivalent,
                      details={"job_id": job.id, "metrics": snap.metrics, "fine_tuned_model": snap.fine_tuned_model})


def _contestants(ctx: StepContext) -> list[tuple[str, str, str]]:
    """(label, endpoint, model) for base, fine-tuned and teacher; the teacher only if it is another model."""
    base, teacher = endpoints.role(ctx.settings, "base"), endpoints.role(ctx.settings, "teacher")
    tuned = ctx.run.fine_tuned_model
    endpoint = ctx.run.job_endpoint or base.endpoint
    if not tuned:
        choice = endpoints.role(ctx.settings, "fine_tuned")
        if choice.model == base.model:
            raise InputError("There is no fine-tuned model yet: run the 'Fine-tune the student' step first.")
        tuned, endpoint = choice.model, choice.endpoint
    rows = [("base", base.endpoint, base.model), ("fine-tuned", endpoint, tuned)]
    if (teacher.endpoint, teacher.model) != (base.endpoint, base.model):
        rows.append(("teacher", teacher.endpoint, teacher.model))
    return rows


def _equivalent_model(label: str) -> str:
    student = openai_equivalent("student")
    return {"base": student, "fine-tuned": f"ft:{student}:demo", "teacher": openai_equivalent("teacher")}[label]


def step_compare(ctx: StepContext) -> StepResult:
    item = load_benchmark(_benchmark(ctx))[0]
    rows = _contestants(ctx)
    teacher = endpoints.role(ctx.settings, "teacher")
    if len(rows) == 2:  # no separate teacher: still three panes, the teacher pane is the base model
        rows.append(("teacher", teacher.endpoint, teacher.model))
    specs = [PaneSpec(endpoints.make_client(ctx.settings, ep), model, list(item.messages), temperature=0.0,
                      max_tokens=config.DEMO_MAX_TOKENS.get()) for _label, ep, model in rows]
    states: list = []
    for snapshot in stream_panes(specs):  # the last snapshot has every pane finished
        states = snapshot
        check_cancel(ctx)
    panes = [{"label": label, "model": model, "text": s.text or (s.error or ""), "status": s.status,
              "contains_expected": item.expected.lower() in (s.text or "").lower(),
              "ttft_s": s.metrics.ttft_s, "tokens_per_s": s.metrics.tokens_per_s,
              "cost_usd": s.metrics.cost_usd}
             for (label, _ep, model), s in zip(rows, states, strict=True)]
    all_local = all(is_local(ctx.settings, ep) for _l, ep, _m in rows)
    real = sum(p["cost_usd"] or 0.0 for p in panes)
    equivalent = sum(usage_cost_usd(_equivalent_model(label), s.metrics.input_tokens or 0, s.metrics.output_tokens) or 0.0
                     for (label, _e, _m), s in zip(rows, states, strict=True)) if all_local else None
    right = [p["label"] for p in panes if p["contains_expected"]]
    return StepResult("compare", f"Asked *{item.question}* (expected: **{item.expected}**). "
                      f"Correct: {', '.join(right) if right else 'none'}.", 0,
                      cost_usd=0.0 if all_local else real, equivalent_usd=equivalent,
                      details={"question": item.question, "expected": item.expected, "panes": panes})


def about_benchmark(name: str, *, held_out: bool, note: str = "") -> str:
    """The scoreboard's last sentence: where its questions came from. A scenario's own note is a whole
    sentence already ("The benchmark is the shipped one: ..."; prefixed, it read "The benchmark: The
    benchmark is ...")."""
    if held_out:
        return f"The benchmark: held out of this demo's own data (`{name}`)."
    return note or f"The benchmark: the shipped `{name}`."


def step_benchmark(ctx: StepContext) -> StepResult:
    bench = _benchmark(ctx)
    items = load_benchmark(bench)
    rows = _contestants(ctx)
    targets = [Target(model, endpoints.make_client(ctx.settings, ep), label,
                      role={"fine-tuned": "fine_tuned"}.get(label, label)) for label, ep, model in rows]
    done = [0]

    def on_answer(_answer, n: int, total: int) -> None:  # noqa: ANN001
        if n - done[0] >= max(1, total // 10) or n == total:
            done[0] = n
            ctx.progress(f"{n}/{total} answers scored")

    all_local = all(is_local(ctx.settings, ep) for _l, ep, _m in rows)
    results = run_benchmark(bench.name, items, targets, on_answer=on_answer, cancel=ctx.cancel,
                            concurrency=step_concurrency(all_local, len(items) * len(targets)),
                            max_tokens=config.DEMO_MAX_TOKENS.get())
    save_results(ctx.run.visitor_id, results)
    board = [f"{r['label']} {r['correct']}/{r['total']} ({r['accuracy']:.0%}, 95% interval "
             f"{r['ci95'][0]:.0%}–{r['ci95'][1]:.0%})" for r in results["results"]]
    real = sum(r["cost_usd"] or 0.0 for r in results["results"])
    equivalent = sum(usage_cost_usd(_equivalent_model(r["label"]), r["input_tokens"], r["output_tokens"]) or 0.0
                     for r in results["results"]) if all_local else None
    said = " ".join(results["verdicts"])
    return StepResult("benchmark", "Scoreboard on held-out questions: " + ", ".join(board) + f". {said} "
                      + about_benchmark(bench.name, held_out=bool(ctx.run.benchmark), note=ctx.scenario.benchmark_note), 0,
                      cost_usd=0.0 if all_local else real, equivalent_usd=equivalent,
                      details={"results": results["results"], "verdicts": results["verdicts"],
                               "comparisons": results["comparisons"], "benchmark": bench.name})
