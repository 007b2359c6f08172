"""The Generate tab's batch mode: the same form, sent as one request file to the teacher's Batch API
at half price (pipeline.batch.build_generation writes the same request bodies as the interactive
run). Results wait in the batches panel until the visitor collects them into the draft."""

from __future__ import annotations

from typing import Any

import gradio as gr

from components import batches as panel
from components import batches_actions as actions
from components.generate_run import run_config
from components.wiring import outputs
from pipeline import batch
from pipeline.endpoints import SessionSettings
from pipeline.generate import Estimate


def batch_preview_line(model: str, est: Estimate) -> str:
    """The interactive estimate's tokens at batch prices (the preview; the built file is counted exactly)."""
    cost = batch.batch_cost_usd(model, est.input_tokens, est.output_tokens)
    money = (f"no batch price known for {model}" if cost is None else "free (no provider charges for this model)"
             if cost == 0 else f"about ${cost:.4f} at batch prices")
    return f"As a batch: {est.requests:,} requests, {money}, results within 24 h."


@outputs("start_btn", "stop_btn", "batch_submit_btn", "batch_file_btn", "progress_bar")
def switch_mode(batch_mode_radio: str) -> dict[str, Any]:
    """Batch mode swaps Start/Stop for Submit batch; the run's bar makes no sense there (the panel has one)."""
    batch_mode = batch_mode_radio == panel.MODES[1]
    return {"start_btn": gr.update(visible=not batch_mode), "stop_btn": gr.update(visible=not batch_mode),
            "batch_submit_btn": gr.update(visible=batch_mode), "batch_file_btn": gr.update(visible=batch_mode),
            "progress_bar": gr.update(visible=not batch_mode)}


@outputs(*actions.SUBMIT)
def submit_generation_batch(template_dd: str, var_box_0: str, var_box_1: str, var_box_2: str, var_box_3: str,
                            var_box_4: str, var_box_5: str, endpoint_dd: str, model_dd: str, n_num: float,
                            concurrency_sl: float, temperature_sl: float, budget_num: float | None,
                            seed_num: float, check_cb: bool, source_file: Any, visitor: str | None,
                            settings: SessionSettings, batch_kind: str, batch_send: bool = True) -> dict[str, Any]:
    """Write the request file; submit it (asking first above the confirmation threshold), or with
    `batch_send` False (the "Only write the request file" button) just offer it for download."""
    config = run_config(template_dd, (var_box_0, var_box_1, var_box_2, var_box_3, var_box_4, var_box_5), endpoint_dd,
                        model_dd, n_num, concurrency_sl, temperature_sl, budget_num, seed_num, check_cb, source_file,
                        panel.checked_visitor(visitor), settings)
    record = batch.build_generation(config, visitor=visitor, endpoint=config.endpoint)
    cost = batch.estimate_cost(record).batch_cost_usd
    if batch_send and config.budget_usd is not None and cost is not None and cost > config.budget_usd:
        # A batch cannot stop half-way at the budget as a run does: refuse before anything is sent.
        message = (f"Not submitted: this batch would cost about ${cost:.4f}, above the ${config.budget_usd:.2f} budget. "
                   f"Ask for fewer examples or raise the budget; its request file is kept ({record.id}).")
        return {**panel.listing(visitor, batch_kind, record.id), "batch_msg_md": message}
    return actions.submit_or_ask(settings, record, batch_kind, send=batch_send)
