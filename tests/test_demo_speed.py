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
