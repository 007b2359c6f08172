"""The local backend's pieces below HTTP: the fast decoder, training-data parsing, the CLI server."""

from __future__ import annotations

import json

import openai
import pytest
import torch

from pipeline.local import weights
from pipeline.local.dataset import DataError, parse_line, read_examples
from pipeline.local.fastlm import FastLlama, sample


@pytest.fixture(scope="module")
def tiny_model():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(weights.tiny_model_dir(), dtype=torch.float32)


def test_fast_decoder_matches_transformers(tiny_model):
    ids = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11, 2]
    with torch.no_grad():
        reference = tiny_model(torch.tensor([ids])).logits[0]
    exact = FastLlama(tiny_model, dtype=torch.float32)
    cache = exact.new_cache()
    assert torch.allclose(exact.forward([(ids, cache)])[0], reference[-1], atol=1e-4)
    # Decoding token by token after a prefill gives the same logits as one pass.
    cache = exact.new_cache()
    exact.forward([(ids[:4], cache)])
    exact.forward([(ids[4:7], cache)])
    steps = [exact.forward([([t], cache)])[0] for t in ids[7:]]
    assert torch.allclose(steps[-1], reference[-1], atol=1e-4)
    # bf16 weights: close, and a batch gives each sequence what it gets alone.
    fast = FastLlama(tiny_model)
    alone = [fast.forward([(seq, fast.new_cache())])[0] for seq in (ids, ids[:5])]
    together = fast.forward([(ids, fast.new_cache()), (ids[:5], fast.new_cache())])
    assert torch.equal(together[0], alone[0]) and torch.equal(together[1], alone[1])
    assert (alone[0] - reference[-1]).abs().max() < 0.05 * reference[-1].abs().max()


def test_sampling_rules():
    logits = torch.tensor([0.0, 5.0, 1.0])
    assert sample(logits, 0.0, 1.0, None) == 1
    gen = torch.Generator().manual_seed(0)
    assert {sample(logits, 1.0, 0.5, gen) for _ in range(20)} == {1}  # top_p keeps the top token only


def test_sampling_follows_the_distribution_and_the_nucleus():
    gen = torch.Generator().manual_seed(0)
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    draws = 20_000
    counts = torch.bincount(torch.tensor([sample(logits, 1.0, 1.0, gen) for _ in range(draws)]), minlength=4)
    assert torch.allclose(counts / draws, torch.tensor([0.5, 0.3, 0.15, 0.05]), atol=0.015)
    # Temperature 0.5 squares the probabilities before normalising.
    sharp = torch.tensor([0.25, 0.09, 0.0225, 0.0025]) / 0.365
    counts = torch.bincount(torch.tensor([sample(logits, 0.5, 1.0, gen) for _ in range(draws)]), minlength=4)
    assert torch.allclose(counts / draws, sharp, atol=0.015)
    # top_p 0.7: the nucleus is the first two tokens (0.5 + 0.3 reaches 0.7), in proportion 5:3.
    counts = torch.bincount(torch.tensor([sample(logits, 1.0, 0.7, gen) for _ in range(draws)]), minlength=4)
    assert counts[2:].sum() == 0 and abs(counts[0] / draws - 0.625) < 0.015
    # A nucleus wider than the first tiers looked at (64, 2048 tokens) is still found exactly.
    wide = -torch.arange(49152, dtype=torch.float32) * 1e-4  # nearly flat, strictly decreasing
    probs = torch.softmax(wide, -1)
    inside = int(((probs.cumsum(0) - probs) < 0.9).sum())
    picks = torch.tensor([sample(wide, 1.0, 0.9, gen) for _ in range(2000)])
    assert inside > 2048 and int(picks.max()) < inside and int(picks.max()) > 2048


def test_training_lines_are_checked_with_line_numbers():
    good = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    assert parse_line(good, 1) == {"prompt": [good["messages"][0]], "completion": [good["messages"][1]]}
    assert parse_line({"prompt": "Q", "completion": "A"}, 1)["completion"][0]["content"] == "A"
    multi = {"messages": [*good["messages"], {"role": "user", "content": "More"}, {"role": "assistant", "content": "Sure"}]}
    assert len(parse_line(multi, 1)["prompt"]) == 3
    for bad, words in (({"messages": [{"role": "user", "content": "Hi"}]}, "no assistant"),
                       ({"messages": [{"role": "bot", "content": "x"}]}, "role"),
                       ([1, 2], "not a JSON object")):
        with pytest.raises(DataError, match=words):
            parse_line(bad, 7)
    data = (json.dumps(good) + "\n") * 3 + "{oops\n"
    with pytest.raises(DataError, match="Line 4 is not valid JSON"):
        read_examples(data.encode(), minimum=1)


def test_serve_command_in_a_subprocess(tmp_path):
    from pipeline.local.runtime import spawn_server

    handle = spawn_server(home=tmp_path, tiny=True)
    try:
        client = handle.client(max_retries=0)
        assert "SmolLM2-135M-Instruct" in [m.id for m in client.models.list()]
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=handle.base_url, api_key="nope", max_retries=0).models.list()
    finally:
        handle.stop()


def test_ensure_local_backend_is_one_server_per_process(monkeypatch):
    monkeypatch.setenv("DISTILL_LOCAL_TINY", "1")
    from pipeline.local.runtime import ensure_local_backend

    first, second = ensure_local_backend(), ensure_local_backend()
    assert first is second and first.base_url.startswith("http://127.0.0.1:")


def test_converted_decoder_is_cached_and_invalidated(tmp_path, monkeypatch):
    import shutil

    from pipeline.local import engine

    model_dir = tmp_path / "tiny"
    shutil.copytree(weights.tiny_model_dir(), model_dir, ignore=shutil.ignore_patterns(".fastlm-*"))
    ids = [1, 9690, 198, 2683, 359]
    first = engine.load_fast(model_dir)
    cached = list(model_dir.glob(f".fastlm-*-v{engine.CACHE_FORMAT}.safetensors"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    # The second start reads the conversion back instead of converting: same logits, file untouched.
    monkeypatch.setattr(engine, "_fast", lambda model: pytest.fail("converted again despite a current cache"))
    again = engine.load_fast(model_dir)
    assert torch.equal(again.forward([(ids, again.new_cache())]), first.forward([(ids, first.new_cache())]))
    monkeypatch.undo()
    # Replaced weights make the cache stale; a damaged cache file is converted again, not fatal.
    weights_file = model_dir / "model.safetensors"
    weights_file.write_bytes(weights_file.read_bytes())
    engine.load_fast(model_dir)
    assert cached[0].stat().st_mtime_ns != stamp
    cached[0].write_bytes(b"not a safetensors file")
    assert torch.equal(engine.load_fast(model_dir).forward([(ids, first.new_cache())]),
                       first.forward([(ids, first.new_cache())]))


def test_app_start_loads_the_local_model_early_unless_another_default(monkeypatch):
    from pipeline.local import runtime
    from pipeline.local.warmup import warm_up_in_background

    monkeypatch.setenv("DISTILL_LOCAL_TINY", "1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-server-key")
    assert warm_up_in_background() is None  # OpenAI is every role's default: nothing to warm
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("DISTILL_WARM_START", "0")
    assert warm_up_in_background() is None
    monkeypatch.delenv("DISTILL_WARM_START")
    thread = warm_up_in_background()
    thread.join(timeout=120)
    handle = runtime.ensure_local_backend()
    handle.wait_ready(120)  # the model loads without anyone having asked for a chat
    assert handle.client().chat.completions.create(
        model="SmolLM2-135M-Instruct", messages=[{"role": "user", "content": "Hi"}], max_tokens=3).choices


GREEDY_PROMPTS = ["What is the capital of France?", "Write a haiku about autumn.", "Who wrote Romeo and Juliet?"]


def _greedy_together(fast, prompts_ids, tokens):
    """Greedy decoding of every prompt in one batch per step, as the engine does for concurrent requests."""
    caches = [fast.new_cache() for _ in prompts_ids]
    logits = fast.forward(list(zip(prompts_ids, caches, strict=True)))
    answers = [[] for _ in prompts_ids]
    for _ in range(tokens):
        for answer, row in zip(answers, logits, strict=True):
            answer.append(int(row.argmax()))
        logits = fast.forward([([a[-1]], c) for a, c in zip(answers, caches, strict=True)])
    return answers


def test_greedy_answers_match_transformers_and_do_not_depend_on_the_batch(tiny_model):
    from transformers import AutoTokenizer

    from tests.engine_support import peaked

    tiny_model = peaked(tiny_model)  # attention peaked enough that a RoPE or cache mistake changes the tokens

    tokenizer = AutoTokenizer.from_pretrained(weights.tiny_model_dir())
    prompts_ids = [list(tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                                      tokenize=True, return_dict=False)) for p in GREEDY_PROMPTS]
    tokens = 12
    expected = []
    for ids in prompts_ids:
        out = tiny_model.generate(torch.tensor([ids]), max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
        expected.append(out[0, len(ids):].tolist())
    exact = FastLlama(tiny_model, dtype=torch.float32)
    assert _greedy_together(exact, prompts_ids, tokens) == expected
    for fast in (FastLlama(tiny_model, weights="int4"), FastLlama(tiny_model, int8=True), FastLlama(tiny_model)):
        alone = [_greedy_together(fast, [ids], tokens)[0] for ids in prompts_ids]
        assert _greedy_together(fast, prompts_ids, tokens) == alone


def _random_adapter(tiny_model, folder, targets="all-linear"):
    """A LoRA adapter with random non-zero weights (a fresh one is all zeros in B), saved by peft."""
    import copy

    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    peft_model = get_peft_model(copy.deepcopy(tiny_model), LoraConfig(
        r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(3)
    peft_model.save_pretrained(folder)
    return peft_model


@pytest.mark.parametrize("targets", ["all-linear", ["q_proj", "v_proj", "down_proj"]])
def test_unmerged_adapter_gives_the_merged_models_logits(tiny_model, tmp_path, targets):
    """A fine-tuned model is the base decoder plus its LoRA adapter applied unmerged in float32: the
    same logits as peft's merged model, for every projection (q/k rows are stored pair-interleaved)."""
    peft_model = _random_adapter(tiny_model, tmp_path, targets)
    ids = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11, 2]
    with torch.no_grad():
        reference = peft_model.merge_and_unload()(torch.tensor([ids])).logits[0]
        base_logits = tiny_model(torch.tensor([ids])).logits[0]
    assert (reference - base_logits).abs().max() > 0.1  # the adapter changes the answer
    tuned = FastLlama(tiny_model, dtype=torch.float32).with_adapter(tmp_path)
    cache = tuned.new_cache()
    assert torch.allclose(tuned.forward([(ids[:6], cache)])[0], reference[5], atol=1e-4)
    steps = [tuned.forward([([t], cache)])[0] for t in ids[6:]]
    assert torch.allclose(steps[-1], reference[-1], atol=1e-4)
    # On int4 base weights the adapter's delta is added exactly: each adapted layer returns the base
    # layer's output plus x A^T B^T (scaling folded in), and the base decoder is left untouched.
    base = FastLlama(tiny_model, weights="int4")
    tuned4 = base.with_adapter(tmp_path)
    a_t, b_t = tuned4.lora[(0, "wqkv")]
    x = torch.randn(2, tiny_model.config.hidden_size)
    projected = base._project(x, 0, "wqkv", [(0, 2, tuned4.lora)])
    assert torch.equal(projected, torch.addmm(base.layers[0].wqkv(x).float(), x @ a_t, b_t))
    assert tuned4.layers is base.layers and not base.lora and type(base.layers[0].wqkv).__name__ == "Int4"


def _steps_apart_and_together(decoders, prompts_ids, tokens):
    """Greedy tokens and every step's logits of each decoder's prompt: decoded alone, then all in one pass."""
    apart = []
    for fast, ids in zip(decoders, prompts_ids, strict=True):
        cache, rows = fast.new_cache(), []
        logits = fast.forward([(ids, cache)])[0]
        for _ in range(tokens):
            rows.append(logits)
            logits = fast.forward([([int(logits.argmax())], cache)])[0]
        apart.append(rows)
    root = decoders[0].root
    caches = [fast.new_cache() for fast in decoders]
    logits = root.forward_together([(fast, [(ids, cache)])
                                    for fast, ids, cache in zip(decoders, prompts_ids, caches, strict=True)])
    together = [[] for _ in decoders]
    for _ in range(tokens):
        for rows, row in zip(together, logits, strict=True):
            rows.append(row)
        logits = root.forward_together([(fast, [([int(rows[-1].argmax())], cache)])
                                        for fast, rows, cache in zip(decoders, together, caches, strict=True)])
    return apart, together


@pytest.mark.parametrize("weights_kind", ["int4", "int8", "dense"])
def test_base_and_fine_tuned_models_decode_in_one_pass_with_their_own_numbers(tiny_model, tmp_path, weights_kind):
    """The three chat panes (base, fine-tuned, teacher = base) and the base-vs-fine-tuned benchmark read the
    weights once per step: every row of a shared pass gets the logits it gets in its own decoder's pass,
    the fine-tuned rows with their adapter's delta and the base rows without it."""
    _random_adapter(tiny_model, tmp_path / "a")
    _random_adapter(tiny_model, tmp_path / "b", ["q_proj", "v_proj", "down_proj"])
    base = FastLlama(tiny_model, weights=weights_kind)
    tuned_a, tuned_b = base.with_adapter(tmp_path / "a"), base.with_adapter(tmp_path / "b")
    prompts = [[1, 9690, 198, 2683, 359], [1, 9690, 198, 2683, 359], [1, 30, 40, 50], [1, 30, 40, 50, 60, 70]]
    decoders = [base, tuned_a, base, tuned_b]  # rows: base, fine-tuned a, base again, fine-tuned b
    apart, together = _steps_apart_and_together(decoders, prompts, 6)
    for rows_apart, rows_together in zip(apart, together, strict=True):
        for alone, shared in zip(rows_apart, rows_together, strict=True):
            if weights_kind == "int8":  # the shared prefill has 20 rows: int8 takes its dense copy from 8 rows
                assert (alone - shared).abs().max() < 0.01
            else:
                assert torch.equal(alone, shared)
            assert int(alone.argmax()) == int(shared.argmax())
    assert not torch.allclose(apart[0][0], apart[1][0], atol=1e-2)  # same prompt: the adapter made a difference
    with pytest.raises(ValueError):
        tuned_a.forward_together([(base, [([1], base.new_cache())])])  # a pass is run by the base's decoder


def test_engine_serves_a_fine_tuned_model_without_merging(tiny_model, tmp_path, monkeypatch):
    import asyncio

    import peft

    from pipeline.local.engine import Engine, GenRequest

    _random_adapter(tiny_model, tmp_path / "adapter")
    engine = Engine(weights.tiny_model_dir, "tiny", lambda m: tmp_path / "adapter" if m == "ft:tiny" else None)
    engine.wait_ready(timeout=300)
    monkeypatch.setattr(peft.PeftModel, "from_pretrained", lambda *a, **k: pytest.fail("merged the adapter"))

    async def answer(model_id: str) -> list[int]:
        request = GenRequest(model_id=model_id, prompt_ids=engine.encode_chat([{"role": "user", "content": "hi"}]),
                             max_tokens=8, temperature=0.0, loop=asyncio.get_running_loop(), out=asyncio.Queue())
        engine.submit(request)
        while (await asyncio.wait_for(request.out.get(), timeout=120))[0] not in ("done", "error"):
            pass
        return request.generated

    try:
        base, tuned = asyncio.run(answer("tiny")), asyncio.run(answer("ft:tiny"))
    finally:
        engine.shutdown()
    expected = engine._models["tiny"].with_adapter(tmp_path / "adapter")
    ids = engine.encode_chat([{"role": "user", "content": "hi"}])
    assert tuned == _greedy_together(expected, [ids], 8)[0][:len(tuned)] and tuned != base


def test_a_large_prefill_is_split_into_passes_with_the_same_logits(tiny_model, tmp_path, monkeypatch):
    from pipeline.local import fastlm

    _random_adapter(tiny_model, tmp_path / "a")
    base = FastLlama(tiny_model, weights="int4")
    tuned = base.with_adapter(tmp_path / "a")
    prompts = [[1, 9690, 198, 2683, 359], [1, 30, 40, 50], [1, 30, 40, 50, 60, 70], [1, 2, 3, 4, 5, 6, 7, 8, 9]]
    decoders = [base, tuned, tuned, base]

    def prefill():
        caches = [fast.new_cache() for fast in decoders]
        return base.forward_together([(fast, [(ids, cache)]) for fast, ids, cache in zip(decoders, prompts, caches,
                                                                                         strict=True)])

    whole = prefill()
    passes = []
    project = base._project

    def recording(x, index, name, adapters):
        if (index, name) == (0, "wqkv"):  # once per pass
            passes.append(x.shape[0])
        return project(x, index, name, adapters)

    monkeypatch.setattr(fastlm, "PREFILL_ROWS", 10)
    monkeypatch.setattr(FastLlama, "_decode", lambda self, *a: pytest.fail("a prefill took the decode path"))
    monkeypatch.setattr(base, "_project", recording)
    split = prefill()
    assert passes == [9, 6, 9]  # 5 + 4 rows, then 6 (4 more would pass 10), then the 9-token prompt
    assert torch.equal(split, whole)


def test_the_engine_decodes_base_and_fine_tuned_requests_in_shared_passes(tiny_model, tmp_path, monkeypatch):
    """Chat panes asking the base and a fine-tuned model at once: each step is one pass for all of them,
    and each gets the answer it gets alone."""
    from pipeline.local.engine import Engine
    from tests.engine_support import generate

    _random_adapter(tiny_model, tmp_path / "adapter")
    engine = Engine(weights.tiny_model_dir, "tiny", lambda m: tmp_path / "adapter" if m == "ft:tiny" else None)
    engine.wait_ready(timeout=300)
    passes: list[list[str]] = []
    together = FastLlama.forward_together

    def recorded(self, parts):
        passes.append(["ft" if model.lora else "base" for model, _ in parts])
        return together(self, parts)

    monkeypatch.setattr(FastLlama, "forward_together", recorded)

    def answers(model_ids: list[str]) -> list[list[int]]:
        prompt = engine.encode_chat([{"role": "user", "content": "hi"}])
        return generate(engine, [{"model_id": m, "prompt_ids": prompt, "max_tokens": 8, "temperature": 0.0}
                                 for m in model_ids])

    try:
        alone = [answers([m])[0] for m in ("tiny", "ft:tiny")]
        passes.clear()
        shared = answers(["tiny", "ft:tiny", "tiny"])
    finally:
        engine.shutdown()
    assert shared == [alone[0], alone[1], alone[0]] and alone[0] != alone[1]
    assert ["base", "ft"] in passes  # one pass held the base rows and the fine-tuned row
    assert all(len(p) == len(set(p)) for p in passes)  # each decoder's rows once per pass, not a pass per row


def test_tokenizer_loads_without_the_model_config_import_chain():
    import subprocess
    import sys

    from transformers import AutoTokenizer

    from pipeline.local.engine import load_tokenizer_fast

    model_dir = weights.tiny_model_dir()
    direct, auto = load_tokenizer_fast(model_dir), AutoTokenizer.from_pretrained(model_dir)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Héllo, 2+2? 🙂"}]
    ids = direct.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    assert ids == auto.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    assert direct.decode(ids) == auto.decode(ids) and direct.eos_token_id == auto.eos_token_id
    # In a fresh process, loading it leaves transformers' modelling stack (~2.5 s of imports) unloaded.
    code = ("import sys; from pathlib import Path; from pipeline.local.engine import load_tokenizer_fast; "
            f"load_tokenizer_fast(Path({str(model_dir)!r})); print('transformers.activations' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_building_the_app_does_not_import_torch():
    """The first page waits for everything the app imports while it is built; torch (~2 s) is needed only
    by the local backend, which starts right after the page is served (pipeline/local/warmup.py)."""
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys; import app; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_a_sampling_failure_ends_that_request_and_the_engine_keeps_serving(monkeypatch):
    """NaN logits made the sampler raise inside the decoding thread: the thread died and every later
    chat on that server waited forever. Now the one request fails with a message and the next is served."""
    import asyncio

    from pipeline.local.engine import Engine, GenRequest

    engine = Engine(weights.tiny_model_dir, "tiny", lambda model_id: None)
    engine.wait_ready(timeout=300)
    real_sample = Engine._sample
    poisoned: set[int] = set()
    calls: dict[int, int] = {}

    def sample_or_fail(request, logits):
        calls[id(request)] = calls.get(id(request), 0) + 1
        if id(request) in poisoned and calls[id(request)] > 1:  # past the first token: the decoding loop
            raise RuntimeError("probability tensor contains either inf, nan or element < 0")
        return real_sample(request, logits)

    monkeypatch.setattr(Engine, "_sample", staticmethod(sample_or_fail))

    async def run(poison: bool) -> list[tuple[str, object]]:
        request = GenRequest(model_id="tiny", prompt_ids=engine.encode_chat([{"role": "user", "content": "hi"}]),
                             max_tokens=4, temperature=0.0, loop=asyncio.get_running_loop(), out=asyncio.Queue())
        if poison:
            poisoned.add(id(request))
        engine.submit(request)
        events = []
        while not events or events[-1][0] not in ("done", "error"):
            events.append(await asyncio.wait_for(request.out.get(), timeout=120))
        return events

    try:
        assert asyncio.run(run(poison=True))[-1][0] == "error"
        assert asyncio.run(run(poison=False))[-1] == ("done", "length")
    finally:
        engine.shutdown()


@pytest.mark.parametrize("weights", ["int8", "int4"])
def test_a_cached_decoder_loads_with_aligned_weights(tiny_model, tmp_path, weights):
    """torch's int8/int4 CPU kernels read weights with aligned SIMD loads; safetensors puts tensors at
    file offsets that need not be 64-byte aligned, and a misaligned weight crashed the app (a general
    protection fault) on the first chat after a restart. Every loaded tensor must be aligned."""
    from safetensors.torch import load_file

    path = tmp_path / "decoder.safetensors"
    FastLlama(tiny_model, weights=weights).save(path)
    raw = load_file(str(path))
    loaded = FastLlama.load(path)
    assert all(t.data_ptr() % 64 == 0 for t in loaded.tensors.values())
    assert {name: t.dtype for name, t in raw.items()} == {name: t.dtype for name, t in loaded.tensors.items()}
    ids = [1, 2, 3, 4]
    fresh, cached = FastLlama(tiny_model, weights=weights), loaded
    assert torch.equal(fresh.forward([(ids, fresh.new_cache())]), cached.forward([(ids, cached.new_cache())]))
