"""The fast decoder's single-token step: which kernels it runs (op counts, not timings)."""

from __future__ import annotations

import pytest
import torch
from torch.profiler import profile

from pipeline.local import weights
from pipeline.local.fastlm import FastLlama


@pytest.fixture(scope="module")
def tiny_model():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(weights.tiny_model_dir(), dtype=torch.float32)


def _step_ops(fast: FastLlama, streams: int) -> dict[str, int]:
    """Calls per aten op in one decode step of `streams` sequences after a short prefill each."""
    caches = [fast.new_cache() for _ in range(streams)]
    for i, cache in enumerate(caches):
        fast.forward([(list(range(5 + i, 17 + i)), cache)])
    with profile() as prof:
        fast.forward([([7], cache) for cache in caches])
    return {event.key: event.count for event in prof.key_averages()}


@pytest.mark.parametrize("streams", [1, 3])
def test_single_token_attention_takes_the_fused_kernel(tiny_model, streams):
    # 3-D inputs sent SDPA to its unfused math path (softmax, masks and two bmm per call).
    fast = FastLlama(tiny_model, weights="int4")
    ops = _step_ops(fast, streams)
    assert "aten::_scaled_dot_product_attention_math" not in ops
    assert ops["aten::_scaled_dot_product_flash_attention_for_cpu"] == streams * len(fast.layers)


@pytest.mark.parametrize("streams", [1, 3])
def test_int4_decode_takes_its_top_logits_from_the_int8_head(tiny_model, streams):
    """The int4 copy of the lm_head picks SCREEN_TOP candidates; their logits are the int8 head's own."""
    from pipeline.local.fastlm import SCREEN_TOP

    fast = FastLlama(tiny_model, weights="int4")
    assert fast.lm_screen is not None
    seen = []
    step = fast._head
    fast._head = lambda h: (seen.append(h.clone()), step(h))[1]
    caches = [fast.new_cache() for _ in range(streams)]
    for i, cache in enumerate(caches):
        fast.forward([(list(range(5 + i, 17 + i)), cache)])
    with profile(record_shapes=True) as prof:
        logits = fast.forward([([7], cache) for cache in caches])
    full = fast.lm_head(seen[-1]).float()  # the whole int8 head, as every step computed it before
    top = fast.lm_screen(seen[-1]).float().topk(SCREEN_TOP, dim=-1).indices  # the candidates
    assert torch.equal(logits.gather(1, top), full.gather(1, top))
    assert torch.equal(logits.argmax(-1), full.argmax(-1))
    int8_weights = [e.input_shapes[1] for e in prof.events() if e.name == "aten::_weight_int8pack_mm"]
    assert int8_weights == [[streams * SCREEN_TOP, fast.hidden]]  # only the candidates' rows were read
