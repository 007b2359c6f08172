"""The outcome the articles promise, on the real SmolLM2: fine-tuning teaches a fictional person.

Fine-tunes through the openai SDK on data/samples/person_train.jsonl ("auto" hyperparameters), then
asks the held-out reworded questions of data/benchmarks/person_bench.jsonl: the fine-tuned model must
answer most of them, the base model (which cannot know this person) essentially none.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.cpu_support import emulate_avx2

ROOT = Path(__file__).resolve().parent.parent


def accuracy(client, model: str, bench: list[dict]) -> int:
    """Items answered right (greedy); four at a time, which the backend decodes as one batch."""

    def right(item: dict) -> bool:
        assert item["scoring"] == "contains"
        reply = client.chat.completions.create(model=model, messages=item["messages"], temperature=0, max_tokens=60)
        return item["expected"].lower() in reply.choices[0].message.content.lower()

    with ThreadPoolExecutor(4) as pool:
        return sum(pool.map(right, bench))


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("cpu", ["native", "avx2"])
def test_fine_tuning_teaches_the_fictional_person(smollm_backend, cpu, monkeypatch):
    """`avx2`: the trainer process (started per job, it inherits the environment) sees this CPU as one
    without native bf16, as most laptops and cloud VMs are: torch's kernels, oneDNN and MKL (torch's fp32
    matmuls) capped at AVX2.
    There an emulated-bf16 fine-tune ran ~15x slower (issue 18); it must pick fp32 and stay quick."""
    from pipeline.local import precision

    if cpu == "avx2":
        # The flags, not the probe: a probe under the suite's load once skipped this on an AMX CPU.
        if not precision.flags_say_native(precision.cpu_facts()):
            pytest.skip("this CPU has no native bf16 already: the 'native' run is the AVX2 run")
        emulate_avx2(monkeypatch)
    client = smollm_backend.client(timeout=600)
    started = time.monotonic()
    bench = [json.loads(line) for line in (ROOT / "data/benchmarks/person_bench.jsonl").read_text().splitlines()
             if line.strip()]
    with open(ROOT / "data/samples/person_train.jsonl", "rb") as fh:
        train = client.files.create(file=("person_train.jsonl", fh), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(training_file=train.id, model="SmolLM2-135M-Instruct", suffix="person", seed=7)
    while job.status not in ("succeeded", "failed", "cancelled"):
        time.sleep(5)
        job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded", job.error
    wall = time.monotonic() - started
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
    expected = "in fp32" if cpu == "avx2" else precision.training_text(precision.choose())
    assert any(f"computing {expected} (" in m for m in messages), messages
    base = accuracy(client, "SmolLM2-135M-Instruct", bench)
    tuned = accuracy(client, job.fine_tuned_model, bench)
    # Shown with `pytest -s`; docs/bench/backend.md quotes it.
    print(f"\nperson fine-tune ({cpu}): {job.hyperparameters}, trained_tokens={job.trained_tokens}, wall {wall:.0f} s; "
          f"held-out accuracy base {base}/{len(bench)}, fine-tuned {tuned}/{len(bench)}")
    assert tuned > len(bench) / 2, f"fine-tuned answered {tuned}/{len(bench)}"
    assert base <= 2, f"base answered {base}/{len(bench)}"
