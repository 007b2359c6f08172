"""What makes the guided demo wait less (issue 18 item 6), checked without timing anything."""

from __future__ import annotations

import io
import json
import threading
import time

BASE = "SmolLM2-135M-Instruct"


def _upload(client, n: int):
    lines = [json.dumps({"messages": [{"role": "user", "content": f"What is fact {i}?"},
                                      {"role": "assistant", "content": f"Fact {i} is blue."}]}) for i in range(n)]
    return client.files.create(file=("train.jsonl", io.BytesIO(("\n".join(lines) + "\n").encode())),
                               purpose="fine-tune")


def test_a_fine_tuned_model_is_ready_to_decode_when_its_job_succeeds(tiny_backend):
    """Its merge and conversion happen before the job says succeeded, in the job runner's thread; the
    first chat with it no longer does that work on the decoding thread, where every stream waited."""
    engine = tiny_backend.app.state.backend.engine
    merged_in: list[str] = []
    merged = engine._merged

    def recording(adapter):
        merged_in.append(threading.current_thread().name)
        return merged(adapter)

    engine._merged = recording
    try:
        client = tiny_backend.client()
        job = client.fine_tuning.jobs.create(training_file=_upload(client, 12).id, model=BASE, suffix="ready",
                                             hyperparameters={"n_epochs": 1, "batch_size": 4})
        deadline = time.monotonic() + 300  # a bound on waiting, not a timing claim
        while (job := client.fine_tuning.jobs.retrieve(job.id)).status not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, f"job stuck in {job.status}"
            time.sleep(0.05)
        assert job.status == "succeeded", job.error
        assert engine.has_prepared(job.fine_tuned_model)  # already, as the job reports success
        reply = client.chat.completions.create(model=job.fine_tuned_model, max_tokens=3,
                                               messages=[{"role": "user", "content": "Hi"}])
        assert reply.model == job.fine_tuned_model
        assert merged_in == ["finetune-train"]  # once, by the job runner; never by "engine-decode"
        # Where the job's time went is in its events: the training process's phases and the preparation.
        events = {e.message.split(":")[0]: e.data for e in client.fine_tuning.jobs.list_events(job.id, limit=100)}
        phases = events["New fine-tuned model created"]["phases_s"]
        assert {"imports", "model", "data", "trained", "prepare_for_chat"} <= set(phases)
        assert phases["imports"] <= phases["model"] <= phases["data"] <= phases["trained"]
    finally:
        engine._merged = merged


def test_the_benchmark_step_sends_the_local_backend_every_question_at_once(tiny_backend, monkeypatch):
    """All 2 x N answers reach the engine together, so it decodes them as one batch per token; 4 at a
    time (the providers' rate) left it decoding 2-4 rows per step for ~10 rounds of the longest answer.
    Requests are held back from the engine until all have arrived: with fewer at once they never would."""
    from pipeline.demo import DemoRun, run_step
    from pipeline.endpoints import SessionSettings
    from pipeline.local import runtime

    monkeypatch.setattr(runtime, "_handle", tiny_backend)
    monkeypatch.setenv("DISTILL_DEMO_MAX_TOKENS", "4")  # random weights never stop on their own
    settings, run = SessionSettings(), DemoRun("reasoning", "visitor_demo_at_once_01")
    for step in ("load", "holdout", "finetune"):
        run_step(run, step, settings)
    expected = run.results["holdout"].details["held_out"] * 2  # base and fine-tuned
    engine = tiny_backend.app.state.backend.engine
    submit, lock = engine.submit, threading.Lock()
    held: list = []
    passed = [False]

    def gate(request) -> None:  # called on the server's event loop: buffer, never block it
        with lock:
            if passed[0]:
                submit(request)
                return
            held.append(request)
            if len(held) < expected:
                return
            passed[0] = True
        for r in held:
            submit(r)

    def open_gate() -> None:
        with lock:
            late = not passed[0]
            passed[0] = True
        for r in held if late else ():
            submit(r)

    engine.submit = gate
    done: list = []
    worker = threading.Thread(target=lambda: done.append(run_step(run, "benchmark", settings)), daemon=True)
    try:
        worker.start()
        worker.join(timeout=120)  # a bound on waiting: with 4 at a time the 5th request never comes
        arrived = len(held)
    finally:
        open_gate()
        engine.submit = submit
    worker.join(timeout=120)
    assert arrived == expected, f"only {arrived} of {expected} requests were sent at once"
    board = done[0].details["results"]
    assert all(r["answered"] == r["total"] and r["errors"] == 0 for r in board)


def test_an_int8_weight_takes_many_rows_through_its_dense_copy(monkeypatch):
    """torch's int8 kernel does one matvec per row (its time grows with the rows): a prefill or many
    streams decoded together use the dequantized weights in one dense matmul, with the same results."""
    import torch

    from pipeline.local import qweights

    # Seeded: with unseeded draws the bf16 rounding of the two paths once differed past the tolerance
    # (one fresh-clone CI run in four).
    torch.manual_seed(0)
    stored = qweights.quantize("w", torch.randn(48, 64), "int8", torch.bfloat16)
    weight = qweights.load("w", stored)
    assert isinstance(weight, qweights.Int8)
    rows = torch.randn(16, 64)  # a prompt's prefill, or 16 streams decoded together
    one_by_one = torch.cat([weight(rows[i:i + 1]) for i in range(len(rows))]).float()
    kernel_rows: list[int] = []
    kernel = torch._weight_int8pack_mm

    def counting(x, q, scale):
        kernel_rows.append(x.shape[0])
        return kernel(x, q, scale)

    monkeypatch.setattr(torch, "_weight_int8pack_mm", counting)
    together = weight(rows).float()
    assert kernel_rows == []  # not one matvec per row
    assert weight(rows[:1]).shape == (1, 48) and kernel_rows == [1]  # a single row keeps the int8 kernel
    assert torch.allclose(together, one_by_one, rtol=0.02, atol=0.05)


def test_prompts_that_arrive_together_are_prefilled_in_one_pass(tiny_backend, monkeypatch):
    """The benchmark's 36 prompts (the augment's 6, the compare's 3) went through the model one prompt
    per pass; now every waiting chat prompt of a model goes through in one pass, and each still gets
    its own answer."""
    from pipeline.local.engine import GenRequest
    from pipeline.local.fastlm import FastLlama

    engine = tiny_backend.app.state.backend.engine
    passes: list[list[int]] = []
    forward = FastLlama.forward_together  # the engine's one entry to the decoder

    def recording(self, parts):
        sizes = [len(tokens) for _, segments in parts for tokens, _ in segments]
        if max(sizes) > 1:  # a prefill, not a decoding step
            passes.append(sizes)
        return forward(self, parts)

    monkeypatch.setattr(FastLlama, "forward_together", recording)
    prompts = [engine.encode_chat([{"role": "user", "content": f"Question number {i}?"}]) for i in range(5)]
    requests = [GenRequest(model_id=BASE, prompt_ids=p, max_tokens=3, temperature=0.0) for p in prompts]
    with engine._cv:  # the worker takes none of them until all are waiting (the lock is reentrant)
        for request in requests:
            engine.submit(request)
    deadline = time.monotonic() + 120  # a bound on waiting, not a timing claim
    while any(r.finish_reason is None for r in requests):
        assert time.monotonic() < deadline, "requests never finished"
        time.sleep(0.02)
    # One pass with all five prompts (each without the start the prefix store gave: the chat template's
    # default system part, stored by earlier requests of this module's backend).
    assert any(len(sizes) == len(prompts) for sizes in passes), passes
    assert all(r.finish_reason in ("stop", "length") and r.generated for r in requests)
    alone = GenRequest(model_id=BASE, prompt_ids=prompts[3], max_tokens=3, temperature=0.0)
    engine.submit(alone)
    while alone.finish_reason is None:
        assert time.monotonic() < deadline, "request never finished"
        time.sleep(0.02)
    assert alone.generated == requests[3].generated  # the same answer as in the batch


def test_an_int4_weight_takes_a_large_prefill_through_its_dense_copy(monkeypatch):
    """torch's int4 kernel is per row too: the prefill of many prompts together unpacks the weights once
    into a dense copy (the same values as the kernel's) that then serves every many-row call."""
    import torch

    from pipeline.local import qweights

    torch.manual_seed(0)
    weight = qweights.load("w", qweights.quantize("w", torch.randn(128, 64), "int4", torch.bfloat16))
    assert isinstance(weight, qweights.Int4)
    many = torch.randn(qweights.INT4_DENSE_FROM_ROWS, 64)
    by_kernel = weight(many[:4]).float()  # 4 rows: the kernel, no copy made
    assert weight.dense is None
    kernel_rows: list[int] = []
    kernel = torch._weight_int4pack_mm_for_cpu

    def counting(x, *args):
        kernel_rows.append(x.shape[0])
        return kernel(x, *args)

    monkeypatch.setattr(torch, "_weight_int4pack_mm_for_cpu", counting)
    together = weight(many).float()
    assert isinstance(weight.dense, torch.Tensor) and kernel_rows == []
    # The same values up to bf16 rounding (outputs are bf16; the two paths round the sums at other
    # points): within 2% of the largest output. A misread packing would be off by the whole scale.
    # (rtol 0.02 / atol 0.05 failed once in a full run; the elements it printed were 1 bf16 ulp apart.)
    assert (together[:4] - by_kernel).abs().max() <= 0.02 * by_kernel.abs().max()
    weight(many[:16])  # later many-row calls use the copy too
    assert kernel_rows == []
    weight(many[:1])  # one row (a decoding step of one stream): the int4 kernel
    assert kernel_rows == [1]
