"""Decoding's thread count: measured per step between 1 and 2 threads (pipeline/local/threads.py)."""

from __future__ import annotations

import pytest
import torch

from pipeline.local import threads, weights
from pipeline.local.threads import EXPLORE_EVERY, FAR_EVERY, INITIAL_SAMPLES, PROBE_STEPS, ThreadChooser

FIRST = 2 * INITIAL_SAMPLES  # steps before either count is preferred


def _run(chooser: ThreadChooser, rows: int, seconds: dict[int, float], steps: int) -> list[int]:
    picked = []
    for _ in range(steps):
        t = chooser.choose(rows)
        picked.append(t)
        chooser.record(rows, t, seconds[t])
    return picked


def test_the_faster_count_is_kept_and_the_other_re_measured_now_and_then():
    chooser = ThreadChooser((1, 2))
    picked = _run(chooser, 1, {1: 0.020, 2: 0.012}, EXPLORE_EVERY * 3)
    assert picked[:FIRST] == [1] * INITIAL_SAMPLES + [2] * INITIAL_SAMPLES  # each measured first
    assert picked.count(1) <= INITIAL_SAMPLES + 3 * PROBE_STEPS  # then mostly the faster, with short re-measurements
    assert chooser.best(1) == 2
    # The machine gets busy: two threads now lose; within a few re-measurements one thread takes over.
    picked = _run(chooser, 1, {1: 0.020, 2: 0.060}, EXPLORE_EVERY * 3)
    assert chooser.best(1) == 1 and picked[-EXPLORE_EVERY + PROBE_STEPS:].count(2) == 0


def test_a_much_slower_count_is_re_measured_less_often_and_still_noticed_when_it_wins():
    # Close (1.2x): re-measured every EXPLORE_EVERY steps; far (1.6x): every FAR_EVERY steps.
    steps = FAR_EVERY * 2
    close, far = ThreadChooser((1, 2)), ThreadChooser((1, 2))
    close_probes = _run(close, 1, {1: 0.0144, 2: 0.012}, steps)[FIRST:].count(1)
    far_probes = _run(far, 1, {1: 0.020, 2: 0.012}, steps)[FIRST:].count(1)
    assert close_probes >= PROBE_STEPS * (steps // EXPLORE_EVERY - 1)
    assert 0 < far_probes <= PROBE_STEPS * (steps // FAR_EVERY + 1)
    # The rule before FAR, kept for the benchmark's comparison, re-measures every EXPLORE_EVERY steps.
    assert _run(ThreadChooser((1, 2), far_every=EXPLORE_EVERY), 1, {1: 0.020, 2: 0.012}, steps)[FIRST:].count(1) \
        == close_probes
    # The machine gets idle: two threads were 3x slower, now 2x faster. The next re-measurement (within
    # FAR_EVERY steps) brings them close, the one after (EXPLORE_EVERY later) ahead: two threads take over.
    chooser = ThreadChooser((1, 2))
    _run(chooser, 1, {1: 0.020, 2: 0.060}, 20)
    picked = _run(chooser, 1, {1: 0.020, 2: 0.010}, FAR_EVERY + 2 * EXPLORE_EVERY)
    assert chooser.best(1) == 2 and picked[-EXPLORE_EVERY + PROBE_STEPS:].count(1) == 0


def test_a_slow_first_step_on_a_new_thread_does_not_make_its_count_look_slow():
    # The first recorded step on two threads took 3x the others (OpenMP starting its thread): as a running
    # average it made two threads look far slower, and one thread was kept for ~FAR_EVERY steps.
    chooser, picked = ThreadChooser((1, 2)), []
    for _ in range(EXPLORE_EVERY):
        t = chooser.choose(1)
        picked.append(t)
        first_on_two = t == 2 and 2 not in picked[:-1]
        chooser.record(1, t, 0.054 if first_on_two else {1: 0.021, 2: 0.0175}[t])
    assert chooser.best(1) == 2 and picked[FIRST:].count(1) <= PROBE_STEPS


def test_two_stray_slow_steps_do_not_hand_the_decoding_to_the_slower_count():
    # Settled on two threads (12 ms against 20), two steps in a row are preempted (60 ms each). As a running
    # average that made two threads look 2x slower than one, "far", and one thread was kept ~FAR_EVERY steps.
    chooser = ThreadChooser((1, 2))
    _run(chooser, 1, {1: 0.020, 2: 0.012}, EXPLORE_EVERY)
    _run(chooser, 1, {1: 0.020, 2: 0.060}, 2)
    picked = _run(chooser, 1, {1: 0.020, 2: 0.012}, EXPLORE_EVERY)
    assert picked.count(1) <= PROBE_STEPS


def test_batch_sizes_are_measured_apart():
    chooser = ThreadChooser((1, 2))
    _run(chooser, 1, {1: 0.020, 2: 0.012}, 40)
    _run(chooser, 3, {1: 0.030, 2: 0.040}, 40)
    assert (chooser.best(1), chooser.best(3)) == (2, 1)


def test_the_setting_picks_the_candidates(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    assert threads.chooser("auto").candidates == (1, 2)
    assert threads.chooser(3).candidates == (3,)
    assert threads.chooser(None) is None
    monkeypatch.setattr(threads, "available_cores", lambda: 1)
    assert threads.chooser("auto").candidates == (1,)


@pytest.mark.parametrize("setting", ["", "1"])
def test_the_engine_times_its_steps_with_both_counts_unless_fixed(monkeypatch, setting):
    from pipeline.local.engine import Engine
    from tests.engine_support import generate

    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setenv("DISTILL_DECODE_THREADS", setting)
    before = torch.get_num_threads()
    engine = Engine(weights.tiny_model_dir, "tiny", lambda model_id: None)
    try:
        engine.wait_ready(timeout=300)

        generate(engine, [{"model_id": "tiny", "prompt_ids": engine.encode_chat([{"role": "user", "content": "hi"}]),
                           "max_tokens": 12, "temperature": 0.0}])
    finally:
        engine.shutdown()
        torch.set_num_threads(before)
    measured = {t for (rows, t) in engine._chooser.seconds if rows == 1}
    assert measured == ({1, 2} if setting == "" else set())
    assert engine._chooser.candidates == ((1, 2) if setting == "" else (1,))


def _env_after_import(extra: dict[str, str]) -> dict:
    """GOMP_SPINCOUNT and the trainer's wait settings in a fresh process that imports pipeline.local."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "DISTILL_DECODE_THREADS")} | extra
    code = ("import json, os; from pipeline.local.standby import trainer_env; t = trainer_env(); "
            "print(json.dumps({'spin': os.environ.get('GOMP_SPINCOUNT'), 'policy': os.environ.get('OMP_WAIT_POLICY'), "
            "'trainer': [t.get('OMP_WAIT_POLICY'), t.get('GOMP_SPINCOUNT')]}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).resolve().parents[1],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def test_the_decoder_spins_briefly_where_it_chooses_its_threads_and_the_trainer_always_sleeps():
    # Nothing set (threads "auto"): a short spin for the decoding process, sleeping waits for the trainer.
    assert _env_after_import({}) == {"spin": "10000", "policy": None, "trainer": ["PASSIVE", None]}
    assert _env_after_import({"DISTILL_DECODE_THREADS": "1"})["spin"] == "10000"
    # A fixed count of 2+ threads cannot fall back to one under contention: sleeping waits.
    for fixed in ("2", "0"):
        assert _env_after_import({"DISTILL_DECODE_THREADS": fixed}) == {"spin": None, "policy": "PASSIVE",
                                                                        "trainer": ["PASSIVE", None]}
    # Wait settings given at launch are kept; the trainer still sleeps unless a policy was given.
    assert _env_after_import({"GOMP_SPINCOUNT": "500"}) == {"spin": "500", "policy": None,
                                                           "trainer": ["PASSIVE", None]}
    assert _env_after_import({"OMP_WAIT_POLICY": "PASSIVE"}) == {"spin": None, "policy": "PASSIVE",
                                                                "trainer": ["PASSIVE", None]}
    assert _env_after_import({"OMP_WAIT_POLICY": "ACTIVE"}) == {"spin": None, "policy": "ACTIVE",
                                                               "trainer": ["ACTIVE", None]}


def test_a_prefill_has_its_own_thread_choice_timed_per_row(monkeypatch):
    """Decoding often keeps one thread; a prefill (many rows, bound by arithmetic) used to inherit it.
    Now it starts on two threads and measures both, whatever decoding left; small and large passes are
    not timed."""
    from pipeline.local.engine import Engine
    from pipeline.local.fastlm import FastLlama
    from tests.engine_support import generate

    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setenv("DISTILL_DECODE_THREADS", "auto")
    seen: list[tuple[int, int]] = []  # (rows, threads) of each prefill pass
    together = FastLlama.forward_together

    def recorded(self, parts):
        rows = [len(tokens) for _, segments in parts for tokens, _ in segments]
        if max(rows) > 1:
            seen.append((sum(rows), torch.get_num_threads()))
        return together(self, parts)

    monkeypatch.setattr(FastLlama, "forward_together", recorded)
    before = torch.get_num_threads()
    engine = Engine(weights.tiny_model_dir, "tiny", lambda model_id: None)
    try:
        engine.wait_ready(timeout=300)

        def ask(prompt: list[int]) -> None:
            generate(engine, [{"model_id": "tiny", "prompt_ids": prompt, "max_tokens": 2, "temperature": 0.0}])

        large = threads.PREFILL_PROBE_ROWS + 50  # never the pass that measures the other count
        for start, rows in ((10, large), (1000, 80), (2000, 80), (3000, 80), (4000, 80)):  # nothing in common
            torch.set_num_threads(1)  # what decoding's choice often leaves
            ask(list(range(start, start + rows)))
        ask(list(range(900, 930)))  # small: not timed
    finally:
        engine.shutdown()
        torch.set_num_threads(before)
    assert [t for _, t in seen[:3]] == [2, 2, 1]  # the large pass on two, then each count measured
    chooser = engine._prefill_chooser
    assert set(chooser.recorded) == {(1, 1), (1, 2)} and chooser.steps == 4  # the large pass is not timed
    assert seen[-1][0] == 30 and seen[-1][1] == chooser.best(1)


def test_a_large_prefill_never_measures_the_slower_count(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    chooser = threads.prefill_chooser("auto")
    before = torch.get_num_threads()
    ran: list[int] = []

    def prefill(rows: int) -> None:
        threads.timed_prefill(chooser, rows, lambda: ran.append(torch.get_num_threads()))

    try:
        prefill(threads.PREFILL_PROBE_ROWS + 1)  # nothing measured yet: two threads
        for _ in range(3):
            prefill(threads.PREFILL_TIMED_ROWS)
        chooser.seconds = {(1, 2): 1.0, (1, 1): 1.1}  # two threads measured faster, one "near"
        chooser.steps = threads.PREFILL_EXPLORE_EVERY  # the moment to re-measure one thread
        prefill(threads.PREFILL_PROBE_ROWS + 1)
        prefill(threads.PREFILL_TIMED_ROWS)
    finally:
        torch.set_num_threads(before)
    assert ran[:3] == [2, 2, 1]  # the large pass on two; the first small ones measure both counts
    assert ran[-2:] == [2, 1]  # the large pass kept two threads; the next small one re-measured one
