"""pipeline.background: reports arrive in order, batched when the consumer is slow; the end carries the
return value or the exception."""

from __future__ import annotations

import threading

import pytest

from pipeline.background import Finished, iterate_in_thread


def test_reports_in_order_then_the_return_value() -> None:
    items = list(iterate_in_thread(lambda report: [report(i) for i in range(5)] and "done", poll_s=0.01))
    assert isinstance(items[-1], Finished) and items[-1].value == "done" and items[-1].error is None
    assert [x for batch in items[:-1] for x in batch] == [0, 1, 2, 3, 4]
    assert all(batch for batch in items[:-1])  # never an empty update


def test_a_slow_consumer_gets_one_batch_with_everything_new() -> None:
    reported = threading.Event()

    def work(report) -> None:
        for i in range(3):
            report(i)
        reported.set()
        threading.Event().wait(0.3)  # still running when the consumer looks

    it = iterate_in_thread(work, poll_s=0.01)
    reported.wait(5)
    assert next(it) == [0, 1, 2]
    assert isinstance(next(it), Finished)


def test_the_exception_is_handed_over_not_lost() -> None:
    def work(report) -> None:
        report("started")
        raise ValueError("teacher said no")

    items = list(iterate_in_thread(work, poll_s=0.01))
    assert items[0] == ["started"]
    assert isinstance(items[-1].error, ValueError) and str(items[-1].error) == "teacher said no"


@pytest.mark.parametrize("n", [0, 1])
def test_finishes_with_or_without_reports(n: int) -> None:
    items = list(iterate_in_thread(lambda report: [report("x") for _ in range(n)], poll_s=0.01))
    assert len(items) == n + 1 and isinstance(items[-1], Finished)
