"""One rule for logs (issue 19): an expected user error is one line, no traceback; a real failure keeps
its traceback. Gradio prints a handler's traceback unless the gr.Error says `print_exception=False`."""

from __future__ import annotations

import logging

import gradio as gr
import pytest

from components.errors import shown_errors
from pipeline.errors import MissingKeyError


@shown_errors
def needs_a_key() -> None:
    raise MissingKeyError("No API key for endpoint 'openai'. Type one in Settings > Endpoints.")


@shown_errors
def asks_a_choice() -> None:
    raise gr.Error("Choose whether loaded examples replace your dataset or are added to it.")


@shown_errors
def breaks() -> None:
    raise ZeroDivisionError("a bug")


@pytest.mark.parametrize("handler", [needs_a_key, asks_a_choice])
def test_an_expected_user_error_is_one_log_line_without_traceback(handler, caplog) -> None:
    caplog.set_level(logging.INFO, logger="distill.ui")
    with pytest.raises(gr.Error) as raised:
        handler()
    assert raised.value.print_exception is False
    lines = [r for r in caplog.records if r.name == "distill.ui"]
    assert len(lines) == 1 and "told the user" in lines[0].getMessage() and lines[0].exc_info is None


def test_a_real_failure_keeps_its_traceback(caplog) -> None:
    with pytest.raises(gr.Error) as raised:
        breaks()
    assert raised.value.print_exception is True and isinstance(raised.value.__cause__, ZeroDivisionError)
    assert any(r.levelno == logging.ERROR for r in caplog.records if r.name == "distill.ui")
