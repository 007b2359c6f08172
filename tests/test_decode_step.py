"""The fast decoder's single-token step: which kernels it runs (op counts, not timings), and its C version
(native.py) against its torch ops."""

from __future__ import annotations

import pytest
import torch
from torch.profiler import profile

from pipeline.local import native, qweights, weights
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


@pytest.mark.parametrize("kernel", ["torch", "c"])
@pytest.mark.parametrize("streams", [1, 3])
def test_int4_decode_takes_its_top_logits_from_the_int8_head(tiny_model, streams, kernel, monkeypatch):
    """The int4 copy of the lm_head (through either int4 kernel) picks SCREEN_TOP candidates; their logits
    are the int8 head's own."""
    from pipeline.local.fastlm import SCREEN_TOP

    monkeypatch.setenv("DISTILL_INT4_KERNEL", kernel)
    fast = FastLlama(tiny_model, weights="int4")
    assert fast.lm_screen is not None
    seen, candidates = [], []
    step, rows = fast._head, fast.lm_head.rows
    fast._head = lambda h, lib=None: (seen.append(h.clone()), step(h, lib))[1]
    fast.lm_head.rows = lambda h, ids: (candidates.append(ids), rows(h, ids))[1]
    caches = [fast.new_cache() for _ in range(streams)]
    for i, cache in enumerate(caches):
        fast.forward([(list(range(5 + i, 17 + i)), cache)])
    with profile(record_shapes=True) as prof:
        logits = fast.forward([([7], cache) for cache in caches])
    full = fast.lm_head(seen[-1]).float()  # the whole int8 head, as every step computed it before
    top = candidates[-1]
    assert top.shape == (streams, SCREEN_TOP)
    if kernel == "torch":
        assert torch.equal(top, fast.lm_screen(seen[-1]).float().topk(SCREEN_TOP, dim=-1).indices)
    assert torch.equal(logits.gather(1, top), full.gather(1, top))
    assert torch.equal(logits.argmax(-1), full.argmax(-1))
    int8_weights = [e.input_shapes[1] for e in prof.events() if e.name == "aten::_weight_int8pack_mm"]
    assert int8_weights == [[streams * SCREEN_TOP, fast.hidden]]  # only the candidates' rows were read


def _greedy_steps(fast: FastLlama, prompts: list[list[int]], tokens: int, decoders=(),
                  forced: list | None = None) -> tuple[torch.Tensor, list]:
    """Every step's logits [steps, rows, vocab] and greedy tokens of `prompts` decoded together (row i by
    decoders[i], made from `fast`, when given; else by `fast`); `forced`: each step's tokens to feed
    instead of the greedy ones (another run's)."""
    decoders = list(decoders) or [fast] * len(prompts)
    caches = [d.new_cache() for d in decoders]
    logits = fast.forward_together([(d, [(ids, c)]) for d, ids, c in zip(decoders, prompts, caches, strict=True)])
    steps, chosen = [], []
    for _ in range(tokens):
        steps.append(logits)
        chosen.append(logits.argmax(-1).tolist() if forced is None else forced[len(chosen)])
        logits = fast.forward_together([(d, [([t], c)]) for d, t, c in zip(decoders, chosen[-1], caches, strict=True)])
    return torch.stack(steps), chosen


@pytest.mark.parametrize("kind", ["int4", "int8"])
def test_the_c_step_gives_the_torch_steps_logits_and_tokens(tiny_model, tmp_path, kind, monkeypatch):
    """Base and fine-tuned rows decoded together, past the cache's first growth (256 positions), with the
    step in C and with its torch ops: the same greedy tokens, and logits equal up to float rounding."""
    from tests.engine_support import peaked
    from tests.test_local_engine import _random_adapter

    monkeypatch.setenv("DISTILL_INT4_KERNEL", "torch")  # the same weight kernels both ways: the small ops differ
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


@pytest.mark.parametrize("kernel", ["torch", "c"])
@pytest.mark.parametrize("streams", [1, 3])
def test_the_c_step_runs_no_torch_ops_between_the_weight_kernels(tiny_model, streams, kernel, monkeypatch):
    monkeypatch.setenv("DISTILL_INT4_KERNEL", kernel)
    assert native.library() is not None
    fast = FastLlama(tiny_model, weights="int4")
    ops = _step_ops(fast, streams)
    for small in ("aten::rms_norm", "aten::silu", "aten::_scaled_dot_product_flash_attention_for_cpu",
                  "aten::view_as_complex"):
        assert small not in ops
    # torch's kernel: four weight kernels per layer, then the int4 lm_head screen; ours: none of torch's
    assert ops.get("aten::_weight_int4pack_mm_for_cpu", 0) == (4 * len(fast.layers) + 1 if kernel == "torch" else 0)
    assert fast.int4_kernel == kernel


def _int4_weight(out: int, inp: int, seed: int) -> qweights.Int4:
    torch.manual_seed(seed)
    weight = qweights.load("w", qweights.quantize("w", torch.randn(out, inp) * 0.05, "int4", torch.bfloat16))
    assert isinstance(weight, qweights.Int4) and weight.blocks is not None
    return weight


def _check_c_kernel(lib) -> None:
    """int4_linear against the weights as torch's packing holds them (so the blocks hold the same codes,
    scales and zeros), in float64: off by the int16 rounding of the activations only."""
    for rows in range(1, 9):
        weight = _int4_weight(128, 160, rows)  # 5 groups of 32: the odd group takes the loop's tail
        dense = weight.weights(torch.float64)
        x = torch.randn(rows, 160)
        x[:, 7] *= 100  # an outlier channel, as the real model's activations have (30-170x their mean)
        expected = x.double() @ dense.t()
        for threads in (1, 2):
            ours = weight.native(lib, x, torch.full((rows, weight.out_features), float("nan")), threads)
            error = (ours.double() - expected).abs().max() / expected.abs().max()
            assert error < 3e-4, (rows, threads, float(error))


def test_the_c_int4_kernel_gives_the_dequantized_weights_product():
    lib = native.library()
    assert lib is not None
    _check_c_kernel(lib)


def test_the_c_int4_kernels_portable_loop_gives_the_same(monkeypatch, fresh_library):
    """Built without AVX2 (a CPU without it, or not x86): the plain C loop."""
    monkeypatch.setattr(native, "_flag_sets", lambda: [native.BASE_FLAGS])
    lib = native.library()
    assert lib is not None
    _check_c_kernel(lib)


def test_the_c_int4_kernel_step_agrees_with_torchs(tiny_model, tmp_path, monkeypatch):
    """Base and fine-tuned rows decoded together with either int4 kernel, the C one fed the tokens torch's
    chose: logits within the kernels' roundings (bf16 activations in torch's, int16 in ours), the same top
    token nearly everywhere (the tiny model's logits are close to flat: a few near-ties may flip)."""
    from tests.engine_support import peaked
    from tests.test_local_engine import _random_adapter

    model = peaked(tiny_model)
    _random_adapter(model, tmp_path / "a")
    prompts = [list(range(5, 45)), list(range(9, 40)), [1, 30, 40, 50]]
    steps, tokens = {}, None
    for kernel in ("torch", "c"):
        monkeypatch.setenv("DISTILL_INT4_KERNEL", kernel)
        base = FastLlama(model, weights="int4")
        tuned = base.with_adapter(tmp_path / "a")
        steps[kernel], chosen = _greedy_steps(base, prompts, 24, [base, tuned, base], forced=tokens)
        tokens = tokens or chosen
        assert base.int4_kernel == kernel
    in_c, in_torch = steps["c"], steps["torch"]
    scale = in_torch.abs().max()
    assert (in_c - in_torch).abs().max() < 0.05 * scale
    assert (in_c - in_torch).abs().mean() < 2e-3 * scale
    assert (in_c.argmax(-1) == in_torch.argmax(-1)).float().mean() > 0.9
    assert len({tuple(t) for t in zip(*tokens, strict=True)}) > 1


class _Timed:
    """A stand-in kernel that takes `seconds` per call."""

    def __init__(self, seconds: float):
        self.seconds, self.calls = seconds, 0

    def __call__(self, *args) -> None:  # noqa: ARG002
        import time

        self.calls += 1
        time.sleep(self.seconds)


@pytest.mark.parametrize(("c_seconds", "torch_seconds", "expected"), [(0.0, 0.002, "c"), (0.002, 0.0, "torch")])
def test_auto_takes_the_int4_kernel_measured_faster(c_seconds, torch_seconds, expected, monkeypatch, caplog):
    from types import SimpleNamespace

    from pipeline.local.fastlm import _faster_kernel

    monkeypatch.setenv("DISTILL_INT4_KERNEL", "auto")
    weight = _int4_weight(64, 64, 0)
    weight.kernel = _Timed(torch_seconds)
    lib = SimpleNamespace(int4_linear=_Timed(c_seconds))
    with caplog.at_level("INFO", logger="pipeline.local.fastlm"):
        assert _faster_kernel(lib, weight) == expected
    assert lib.int4_linear.calls == weight.kernel.calls > 1
    assert f"int4 kernel of the decode step: {expected}" in caplog.text
    for forced in ("c", "torch"):  # DISTILL_INT4_KERNEL forces it, unmeasured
        monkeypatch.setenv("DISTILL_INT4_KERNEL", forced)
        assert _faster_kernel(lib, weight) == forced


def test_a_conversion_without_the_c_blocks_decodes_with_torchs_kernel(tiny_model, tmp_path, monkeypatch):
    """A decoder file converted before the blocks existed (the engine converts again, keyed by CACHE_FORMAT,
    but any such file still decodes): torch's int4 kernel, the same tokens."""
    monkeypatch.setenv("DISTILL_INT4_KERNEL", "c")
    fast = FastLlama(tiny_model, weights="int4")
    fast.tensors = {name: t for name, t in fast.tensors.items() if not name.endswith(".b4")}
    fast.save(tmp_path / "old.safetensors")
    old = FastLlama.load(tmp_path / "old.safetensors")
    assert not old.has_blocks
    monkeypatch.setenv("DISTILL_INT4_KERNEL", "torch")
    expected = _greedy_steps(fast, [[1, 30, 40, 50]], 6)[1]
    monkeypatch.setenv("DISTILL_INT4_KERNEL", "c")
    assert _greedy_steps(old, [[1, 30, 40, 50]], 6)[1] == expected
    assert "aten::_weight_int4pack_mm_for_cpu" in _step_ops(old, 1)


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
