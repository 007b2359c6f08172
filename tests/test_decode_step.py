"""The fast decoder's single-token step: which kernels it runs (op counts, not timings), and its C version
(native.py) against its torch ops."""

from __future__ import annotations

import pytest
import torch
from torch.profiler import profile

from pipeline.local import native, weights
from pipeline.local.fastlm import FastLlama


@pytest.fixture(scope="module")
def tiny_model():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(weights.tiny_model_dir(), dtype=torch.float32)


@pytest.fixture
def torch_step(monkeypatch):
    """The decode step with its torch ops (as where no C compiler is found)."""
    monkeypatch.setattr(native, "library", lambda: None)


@pytest.fixture
def fresh_library():
    """native.library() looked up again in the test (its result is cached per process), and after it."""
    native.library.cache_clear()
    yield
    native.library.cache_clear()


def _step_ops(fast: FastLlama, streams: int) -> dict[str, int]:
    """Calls per aten op in one decode step of `streams` sequences after a short prefill each."""
    caches = [fast.new_cache() for _ in range(streams)]
    for i, cache in enumerate(caches):
        fast.forward([(list(range(5 + i, 17 + i)), cache)])
    with profile() as prof:
        fast.forward([([7], cache) for cache in caches])
    return {event.key: event.count for event in prof.key_averages()}


@pytest.mark.parametrize("streams", [1, 3])
def test_single_token_attention_takes_the_fused_kernel(tiny_model, streams, torch_step):
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


def _greedy_steps(fast: FastLlama, prompts: list[list[int]], tokens: int, decoders=()) -> tuple[torch.Tensor, list]:
    """Every step's logits [steps, rows, vocab] and greedy tokens of `prompts` decoded together (row i by
    decoders[i], made from `fast`, when given; else by `fast`)."""
    decoders = list(decoders) or [fast] * len(prompts)
    caches = [d.new_cache() for d in decoders]
    logits = fast.forward_together([(d, [(ids, c)]) for d, ids, c in zip(decoders, prompts, caches, strict=True)])
    steps, chosen = [], []
    for _ in range(tokens):
        steps.append(logits)
        chosen.append(logits.argmax(-1).tolist())
        logits = fast.forward_together([(d, [([t], c)]) for d, t, c in zip(decoders, chosen[-1], caches, strict=True)])
    return torch.stack(steps), chosen


@pytest.mark.parametrize("kind", ["int4", "int8"])
def test_the_c_step_gives_the_torch_steps_logits_and_tokens(tiny_model, tmp_path, kind, monkeypatch):
    """Base and fine-tuned rows decoded together, past the cache's first growth (256 positions), with the
    step in C and with its torch ops: the same greedy tokens, and logits equal up to float rounding."""
    from tests.engine_support import peaked
    from tests.test_local_engine import _random_adapter

    assert native.library() is not None, "this machine has a C compiler: the C step must build"
    model = peaked(tiny_model)
    _random_adapter(model, tmp_path / "a")
    base = FastLlama(model, weights=kind)
    tuned = base.with_adapter(tmp_path / "a")
    prompts = [list(range(5, 245)), list(range(9, 240)), [1, 30, 40, 50]]
    decoders = [base, tuned, base]
    in_c, tokens_c = _greedy_steps(base, prompts, 24, decoders)
    monkeypatch.setattr(native, "library", lambda: None)
    in_torch, tokens_torch = _greedy_steps(base, prompts, 24, decoders)
    assert tokens_c == tokens_torch
    scale = in_torch.abs().max()
    # A bf16 rounding that falls the other way moves a few logits by a few bf16 steps; on average they agree.
    assert (in_c - in_torch).abs().max() < 0.05 * scale
    assert (in_c - in_torch).abs().mean() < 1e-4 * scale
    assert len({tuple(t) for t in zip(*tokens_c, strict=True)}) > 1  # the rows did not all say the same


@pytest.mark.parametrize("streams", [1, 3])
def test_the_c_step_runs_no_torch_ops_between_the_weight_kernels(tiny_model, streams):
    assert native.library() is not None
    fast = FastLlama(tiny_model, weights="int4")
    ops = _step_ops(fast, streams)
    for small in ("aten::rms_norm", "aten::silu", "aten::_scaled_dot_product_flash_attention_for_cpu",
                  "aten::view_as_complex"):
        assert small not in ops
    # four weight kernels per layer, then the int4 lm_head screen
    assert ops["aten::_weight_int4pack_mm_for_cpu"] == 4 * len(fast.layers) + 1


def test_without_a_working_compiler_the_decoder_keeps_its_torch_ops(tiny_model, monkeypatch, fresh_library, caplog):
    fast = FastLlama(tiny_model, weights="int4")
    expected = _greedy_steps(fast, [[1, 30, 40, 50]], 6)[1]
    monkeypatch.setenv("CC", "false")  # a "compiler" that fails every build
    native.library.cache_clear()
    with caplog.at_level("WARNING", logger="pipeline.local.native"):
        assert native.library() is None
    assert "C helpers are unavailable" in caplog.text
    assert _greedy_steps(fast, [[1, 30, 40, 50]], 6)[1] == expected
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" in _step_ops(fast, 1)
    native.library.cache_clear()
    monkeypatch.setenv("CC", "/nonexistent/cc")
    assert native.library() is None
    native.library.cache_clear()
    monkeypatch.delenv("CC")
    monkeypatch.setenv("DISTILL_NATIVE_STEP", "0")
    assert native.library() is None


def test_a_step_past_the_c_steps_length_runs_the_torch_ops(tiny_model):
    """The C attention is single-threaded and slower than SDPA at long contexts: from NATIVE_POSITIONS on,
    a step runs the torch ops."""
    from pipeline.local.fastlm import NATIVE_POSITIONS

    assert native.library() is not None
    fast = FastLlama(tiny_model, weights="int4")
    sdpa = "aten::_scaled_dot_product_flash_attention_for_cpu"
    for length, in_c in ((NATIVE_POSITIONS - 1, True), (NATIVE_POSITIONS, False)):
        cache = fast.new_cache()
        fast.forward([(list(range(5, 5 + length)), cache)])
        with profile() as prof:
            fast.forward([([7], cache)])
        ops = {event.key for event in prof.key_averages()}
        assert (sdpa not in ops) == in_c, length
