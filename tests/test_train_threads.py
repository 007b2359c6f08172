"""The training process's thread count per step (pipeline/local/train_threads.py), on a simulated clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
import torch

from pipeline.local import train_threads


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


class _Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.embed


def _train(seconds: Callable[[int, int], float], lengths: Callable[[int], int], steps: int = 60
           ) -> train_threads.StepThreads:
    """Runs `steps` simulated optimizer steps: step n computes a batch of 2 x lengths(n) positions and
    takes seconds(threads, positions) on the clock; a validation forward (no grad) follows each."""
    now, picked = [0.0], []
    model = _Model()
    stepper = train_threads.StepThreads(model, train_threads.measuring((2, 1)), clock=lambda: now[0])
    for n in range(1, steps + 1):
        state = SimpleNamespace(global_step=n)
        stepper.on_step_begin(None, state, None)
        batch = torch.zeros(2, lengths(n), dtype=torch.long)
        model.embed(batch).sum().backward()
        picked.append(torch.get_num_threads())
        now[0] += seconds(picked[-1], batch.numel())
        stepper.on_step_end(None, state, None)
        with torch.no_grad():  # validation: not a training step's positions
            model.embed(torch.zeros(8, 100, dtype=torch.long))
    stepper.picked = picked  # the count of each step, in order
    return stepper


def test_the_trainer_keeps_two_threads_where_they_are_faster_and_one_where_it_is() -> None:
    alone = _train(lambda threads, positions: (0.2 + 0.005 * positions) * (1.0 if threads == 2 else 1.2),
                   lambda n: 50)
    assert alone.steps_on[2] >= 50 and alone.steps_on[1] >= 2  # re-measured now and then
    beside_chat = _train(lambda threads, positions: (0.2 + 0.005 * positions) * (1.4 if threads == 2 else 1.0),
                         lambda n: 50)
    assert beside_chat.steps_on[1] >= 54 and beside_chat.steps_on[2] >= 3


def test_the_trainer_goes_back_to_two_threads_soon_after_the_chat_ends() -> None:
    # Seen in the app: a chat during the first third of a fine-tune, one thread from then on.
    step = [0]

    def seconds(threads: int, positions: int) -> float:
        step[0] += 1
        chatting = step[0] <= 20
        return (0.2 + 0.005 * positions) * ((1.4 if threads == 2 else 1.0) if chatting else (1.0 if threads == 2 else 1.2))

    stepper = _train(seconds, lambda n: 50, steps=60)
    assert stepper.steps_on[1] >= 10  # one thread while the chat ran
    # After it ended, back on two threads by the next re-measurement: the last 25 steps at most 2 on one.
    assert stepper.picked[-25:].count(1) <= 2, stepper.picked


def test_a_step_is_judged_by_its_time_per_position_not_by_its_batch_length() -> None:
    # Two threads are 1.2x faster, but every step on them happens to get a long batch: per step they look
    # slower (0.2 + 0.005 x 300 = 1.7 s against 0.2 + 0.005 x 60 x 1.2 = 0.56 s), per position faster.
    def seconds(threads: int, positions: int) -> float:
        return (0.2 + 0.005 * positions) * (1.0 if threads == 2 else 1.2)

    def lengths(_n: int) -> int:
        return 150 if torch.get_num_threads() == 2 else 30

    stepper = _train(seconds, lengths)
    assert stepper.steps_on[2] >= 50, stepper.steps_on


def test_the_setting_fixes_or_measures_the_count() -> None:
    assert train_threads.chooser(None) is None
    assert train_threads.chooser(3).candidates == (3,)
    auto = train_threads.chooser("auto")
    assert auto.candidates == ((2, 1) if train_threads.available_cores() >= 2 else (1,))


def test_the_training_process_reports_the_steps_it_ran_on_each_count(tmp_path) -> None:
    from tests.test_precision import _train_tiny

    done = _train_tiny(tmp_path / "auto", {"DISTILL_TRAIN_THREADS": "auto"}, epochs=3, total_steps=6)
    steps = {int(n): c for n, c in done["thread_steps"].items()}
    assert sum(steps.values()) == 6
    if train_threads.available_cores() >= 2:  # two threads first (and for the unmeasured first step), then one
        assert steps[2] >= 2 and steps[1] >= 1
    fixed = _train_tiny(tmp_path / "fixed", {"DISTILL_TRAIN_THREADS": "1"})
    assert fixed["thread_steps"] == {"1": 2}
