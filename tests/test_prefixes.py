"""Prompt prefixes computed once and reused (pipeline/local/prefixes.py), in the engine with the tiny model."""

from __future__ import annotations

import pytest
import torch

from pipeline.local import prefixes, weights
from pipeline.local.fastlm import FastLlama, KVCache
from tests.engine_support import generate

TEMPLATE = ("Rewrite this user message 2 different ways, keeping its meaning, so that the answer it got stays "
            "correct for every rewrite, and vary the wording, length, word order and formality. USER MESSAGE: ")


@pytest.fixture
def engine():
    from pipeline.local.engine import Engine

    engine = Engine(weights.tiny_model_dir, "tiny", lambda model_id: None)
    engine.wait_ready(timeout=300)
    yield engine
    engine.shutdown()


def _record_passes(monkeypatch) -> list[list[int]]:
    """The tokens fed per sequence in each forward pass (prefills and decode steps alike)."""
    passes: list[list[int]] = []
    together = FastLlama.forward_together

    def recorded(self, parts):
        passes.append([len(tokens) for _, segments in parts for tokens, _ in segments])
        return together(self, parts)

    monkeypatch.setattr(FastLlama, "forward_together", recorded)
    return passes


def _ask(engine, prompts: list[list[int]], **sampling) -> list[list[int]]:
    return generate(engine, [{"model_id": "tiny", "prompt_ids": ids, "max_tokens": 6, "temperature": 0.0} | sampling
                             for ids in prompts])


def _prompt(engine, question: str) -> list[int]:
    return engine.encode_chat([{"role": "user", "content": TEMPLATE + question}])


def test_a_prompt_asked_again_needs_no_prefill_and_gets_the_same_answer(engine, monkeypatch):
    passes = _record_passes(monkeypatch)
    prompt = _prompt(engine, "What is Ottoline Crumwell's full name?")
    first = _ask(engine, [prompt], temperature=1.0, seed=3)
    assert passes[0] == [len(prompt)]
    passes.clear()
    again = _ask(engine, [prompt], temperature=1.0, seed=3)
    assert again == first
    assert all(sizes == [1] for sizes in passes)  # decode steps only: the prompt's pass was not run again


def test_a_prompt_that_starts_like_an_earlier_one_computes_only_its_own_tokens(engine, monkeypatch):
    passes = _record_passes(monkeypatch)
    earlier, later = (_prompt(engine, q) for q in ("What is her full name?", "Where was Ottoline Crumwell born?"))
    _ask(engine, [earlier])
    passes.clear()
    _ask(engine, [later])
    shared = prefixes.common_length(earlier, later)
    assert shared > 40
    assert passes[0] == [len(later) - shared]


def test_prompts_that_arrive_together_compute_their_common_start_once(engine, monkeypatch):
    passes = _record_passes(monkeypatch)
    questions = ["Where was she born?", "What is her middle name?", "Which year was she born?",
                 "Who taught her to paint?"]
    prompts = [_prompt(engine, q) for q in questions]
    shared = len(prefixes.group_prefix(prompts))
    assert shared > 40
    _ask(engine, prompts)
    assert passes[0] == [shared]  # the common start alone, then each prompt's own tokens in one pass
    assert passes[1] == [len(p) - shared for p in prompts]


def test_reused_keys_and_values_give_the_logits_of_a_whole_prefill():
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(weights.tiny_model_dir(), dtype=torch.float32)
    fast = FastLlama(model, dtype=torch.float32)
    earlier, later = list(range(5, 40)), list(range(5, 30)) + [77, 78, 79, 80]
    whole = fast.forward([(later, fast.new_cache())])
    store = prefixes.PrefixStore()
    first = fast.new_cache()
    fast.forward([(earlier, first)])
    store.add("tiny", earlier, first)
    cache = fast.new_cache()
    assert store.take("tiny", later, cache) is None and cache.length == 25
    part = fast.forward([(later[cache.length:], cache)])
    assert torch.allclose(part, whole, atol=1e-4, rtol=1e-4)


def test_the_store_keeps_to_its_budget_and_forgets_a_model():
    kv = KVCache(layers=2, kv_heads=1, head_dim=4, dtype=torch.float32)
    kv.length = 100
    entry_bytes = 2 * 2 * 1 * 100 * 4 * 4
    store = prefixes.PrefixStore(budget_bytes=2 * entry_bytes)
    for first in range(3):
        store.add("a", [first] + list(range(1000, 1099)), kv)
    assert store.bytes == 2 * entry_bytes  # the oldest went
    assert store.longest("a", [0] + list(range(1000, 1099))) == 0
    assert store.longest("a", [2] + list(range(1000, 1099))) == 100
    assert store.longest("b", [2] + list(range(1000, 1099))) == 0  # another model's positions are not its
    store.forget("a")
    assert store.bytes == 0 and store.longest("a", [2] + list(range(1000, 1099))) == 0
