"""Precision is chosen by what the CPU does natively: bf16 only where it is native, never emulated."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipeline.local import native, precision
from tests.cpu_support import AVX2_ONLY

ROOT = Path(__file__).resolve().parent.parent


def facts(**over) -> dict:
    base = {"cpu": "test", "machine": "x86_64", "torch": "x", "aten_capability": "AVX512", "onednn_max_isa": "",
            "avx512_bf16": True, "amx_bf16": True, "avx512_vnni": True}
    return {**base, **over}


def probe_says(speedup: float, calls: list | None = None):
    def measure(_facts):
        if calls is not None:
            calls.append(1)
        return {"bf16_speedup": speedup}
    return measure


def no_probe(_facts):
    raise AssertionError("the probe must not run where the flags already say bf16 is not native")


@pytest.mark.parametrize("over", [
    {"avx512_bf16": False, "amx_bf16": False, "aten_capability": "AVX2"},  # an AVX2-only laptop or VM
    {"avx512_bf16": False, "amx_bf16": False},  # AVX512 without BF16
    {"aten_capability": "AVX2"},  # ATEN_CPU_CAPABILITY=avx2
    {"onednn_max_isa": "AVX2"},  # ONEDNN_MAX_CPU_ISA=AVX2
    {"onednn_max_isa": "avx512_core_vnni"},  # oneDNN capped below its first bf16 ISA
    {"onednn_max_isa": "NONSENSE"},  # unknown cap: fp32 is never emulated
])
def test_no_native_bf16_means_fp32_everywhere(over):
    choice = precision.decide(facts(**over), measure=no_probe)
    assert (choice.train, choice.compute, choice.native_bf16) == ("fp32", "fp32", False)
    assert choice.decode_weights in ("int4", "int8")  # torch's own int4/int8 kernels: bf16 activations, no bf16 matmul


def test_native_flags_are_confirmed_by_the_probe():
    calls: list = []
    assert precision.decide(facts(), measure=probe_says(3.0, calls)).compute == "bf16"
    assert precision.decide(facts(onednn_max_isa="AVX512_CORE_AMX"), measure=probe_says(3.0, calls)).compute == "bf16"
    assert len(calls) == 2
    slow = precision.decide(facts(), measure=probe_says(0.5))
    assert (slow.compute, slow.native_bf16) == ("fp32", False)
    assert "probe" in slow.reason


def test_other_architectures_follow_the_probe():
    assert precision.decide(facts(machine="aarch64"), measure=probe_says(2.0)).compute == "bf16"
    assert precision.decide(facts(machine="aarch64"), measure=probe_says(0.3)).compute == "fp32"


def test_fine_tuning_uses_bf16_matmuls_where_bf16_is_native():
    """The frozen weights' matmuls in bf16 (pipeline/local/frozen_bf16.py) where the probe confirms native
    bf16; fp32 where it does not, or when forced."""
    native = precision.decide(facts(), measure=probe_says(3.0))
    assert (native.train, native.compute, native.native_bf16) == ("bf16", "bf16", True)
    assert "frozen weights' matmuls in bf16" in precision.summary(native)
    slow = precision.decide(facts(), measure=probe_says(0.5))
    assert (slow.train, slow.native_bf16) == ("fp32", False)
    assert precision.decide(facts(), forced="fp32", measure=probe_says(3.0)).train == "fp32"


def test_the_environment_variable_forces_it():
    forced = precision.decide(facts(aten_capability="AVX2"), forced="bf16", measure=no_probe)
    assert (forced.train, forced.compute, forced.native_bf16) == ("bf16", "bf16", False)
    exact = precision.decide(facts(), forced="fp32", measure=probe_says(3.0))
    assert (exact.train, exact.compute, exact.decode_weights) == ("fp32", "fp32", "fp32")
    assert "DISTILL_PRECISION=fp32" in precision.summary(exact)


def test_probe_result_is_cached_per_cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "_cache_path", lambda: tmp_path / "probe.json")
    runs: list = []
    monkeypatch.setattr(precision, "probe", lambda: runs.append(1) or {"bf16_speedup": 2.5})
    assert precision.cached_probe(facts())["bf16_speedup"] == 2.5
    assert precision.cached_probe(facts())["bf16_speedup"] == 2.5
    assert len(runs) == 1
    precision.cached_probe(facts(cpu="another"))
    assert len(runs) == 2
    assert len(json.loads((tmp_path / "probe.json").read_text())) == 2


def test_a_probe_that_contradicts_native_flags_is_retried_and_not_kept(tmp_path, monkeypatch):
    """One slow measurement (another process busy during it) must not turn an AMX CPU into an fp32 one
    for every later process: it once skipped the suite's AVX2 fine-tune on this very CPU."""
    monkeypatch.setattr(precision, "_cache_path", lambda: tmp_path / "probe.json")
    results = iter([0.9, 3.1])  # the first probe ran under load, the retry did not
    monkeypatch.setattr(precision, "probe", lambda: {"bf16_speedup": next(results)})
    assert precision.cached_probe(facts())["bf16_speedup"] == 3.1
    assert list(json.loads((tmp_path / "probe.json").read_text()).values()) == [{"bf16_speedup": 3.1}]

    (tmp_path / "probe.json").unlink()
    runs: list = []
    monkeypatch.setattr(precision, "probe", lambda: runs.append(1) or {"bf16_speedup": 0.8 + 0.1 * len(runs)})
    assert precision.cached_probe(facts(), retries=2)["bf16_speedup"] == pytest.approx(1.1)  # the best of three
    assert len(runs) == 3 and not (tmp_path / "probe.json").exists()
    precision.cached_probe(facts(), retries=0)
    assert len(runs) == 4  # measured again: a contradiction is never cached

    # Where the flags cannot tell (not x86), the probe alone decides: one run, kept, whatever it says.
    runs.clear()
    monkeypatch.setattr(precision, "probe", lambda: runs.append(1) or {"bf16_speedup": 0.5})
    precision.cached_probe(facts(machine="aarch64"))
    precision.cached_probe(facts(machine="aarch64"))
    assert len(runs) == 1


def test_the_probe_compares_real_matmuls():
    result = precision.probe(budget_s=0.05)
    assert result["fp32_s"] > 0 and result["bf16_s"] > 0
    assert result["bf16_speedup"] == pytest.approx(result["fp32_s"] / result["bf16_s"])


def _choose_in_subprocess(env: dict) -> dict:
    code = ("import json; from pipeline.local import precision as p; c = p.choose(); f = p.cpu_facts(); "
            "print(json.dumps({**p.as_dict(c), 'facts': f, 'flags_native': p.flags_say_native(f)}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env}, check=True,
                         capture_output=True, text=True, timeout=300).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_emulated_avx2_cpu_gets_fp32():
    result = _choose_in_subprocess({**AVX2_ONLY, "DISTILL_PRECISION": "auto"})
    assert result["facts"]["aten_capability"] == "AVX2"  # the knob really reached torch
    assert (result["train"], result["compute"], result["native_bf16"]) == ("fp32", "fp32", False)


def test_this_cpu_choice_agrees_with_its_flags():
    """On any machine: bf16 only where the flags (as capped by the knobs) say it is native."""
    result = _choose_in_subprocess({"DISTILL_PRECISION": "auto"})
    if result["flags_native"] is False:
        assert result["compute"] == "fp32"
    assert result["compute"] == result["train"] == ("bf16" if result["native_bf16"] else "fp32")


def test_settings_tab_shows_the_choice():
    from components.settings_handlers import show_precision

    # Filled when the Settings tab is opened (tests/test_cold_start.py checks that wiring): deciding
    # imports torch, which delayed the first page when built and the first chat when run at page load.
    assert show_precision()["precision_md"].startswith(f"**Local model compute:** {precision.summary()}")


def test_settings_tab_shows_the_int4_kernel_chosen(monkeypatch):
    from components.settings_handlers import show_precision
    from pipeline.local import fastlm

    monkeypatch.setattr(fastlm, "_kernel_note", None)
    assert "decode kernel" not in show_precision()["precision_md"]  # nothing decoded in this process yet
    monkeypatch.setenv("DISTILL_INT4_KERNEL", "auto")
    weight = fastlm.qweights.load("w", fastlm.qweights.quantize("w", torch.randn(64, 64), "int4", torch.bfloat16))
    lib = native.library()
    assert lib is not None
    choice = fastlm._faster_kernel(lib, weight)
    shown = show_precision()["precision_md"]
    assert "**Local decode kernel:** int4 weights through " in shown
    assert ("our C kernel" if choice == "c" else "torch’s kernel") in shown and "DISTILL_INT4_KERNEL" in shown


def _train_tiny(tmp_path: Path, env: dict, **spec_fields: object) -> dict:
    """The real trainer process on the tiny model (2 steps unless `spec_fields` say otherwise);
    returns its "done" line."""
    from pipeline.local.dataset import read_examples
    from pipeline.local.weights import tiny_model_dir

    train = read_examples((ROOT / "data/samples/person_train.jsonl").read_bytes())[:4]
    spec = {"model_dir": str(tiny_model_dir()), "train": train, "valid": train[:2], "epochs": 1, "batch_size": 2,
            "learning_rate": 1e-3, "seed": 0, "adapter_dir": str(tmp_path / "adapter"), "total_steps": 2,
            **spec_fields}
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, "-m", "pipeline.local.trainer", str(tmp_path)], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    done = next(json.loads(x) for x in proc.stdout.splitlines() if x.startswith('{"kind": "done"'))
    done["losses"] = [json.loads(x)["data"]["train_loss"] for x in proc.stdout.splitlines()
                      if x.startswith('{"kind": "metrics"')]
    return done


def test_trainer_computes_in_fp32_on_an_avx2_only_cpu(tmp_path):
    done = _train_tiny(tmp_path, {**AVX2_ONLY, "DISTILL_PRECISION": "auto"})
    assert (done["precision"], done["compute_dtype"], done["weight_dtypes"]) == ("fp32", "float32", ["float32"])


def test_trainer_dtype_follows_this_cpu(tmp_path):
    expected = _choose_in_subprocess({"DISTILL_PRECISION": "auto"})["train"]
    done = _train_tiny(tmp_path, {"DISTILL_PRECISION": "auto"})
    assert done["precision"] == expected
    assert done["compute_dtype"] == {"bf16": "bfloat16", "fp32": "float32"}[expected]
    # In bf16 the frozen linear weights are stored in bf16; LoRA, norms and embeddings stay fp32.
    assert done["weight_dtypes"] == {"bf16": ["bfloat16", "float32"], "fp32": ["float32"]}[expected]


def test_trainer_does_not_recompute_activations(tmp_path):
    """TRL turns gradient checkpointing on by default; the forward pass would run twice per step."""
    done = _train_tiny(tmp_path, {})
    assert done["forwards_per_step"] == 1.0


def test_trainer_takes_logits_only_where_the_loss_is(tmp_path):
    """TRL's SFTTrainer on a CPU projects every position through the 49k-word LM head (and takes its
    entropy); ours projects only the completion tokens, for the same loss (pipeline/local/sft_head.py)."""
    from transformers import AutoTokenizer

    from pipeline.local.dataset import read_examples
    from pipeline.local.weights import tiny_model_dir

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir())
    examples = read_examples((ROOT / "data/samples/person_train.jsonl").read_bytes())[:4]  # _train_tiny's data
    completion_tokens = sum(
        len(tokenizer.apply_chat_template(ex["prompt"] + ex["completion"], tokenize=True, return_dict=False))
        - len(tokenizer.apply_chat_template(ex["prompt"], tokenize=True, add_generation_prompt=True, return_dict=False))
        for ex in examples)
    ours = _train_tiny(tmp_path / "ours", {})
    trl = _train_tiny(tmp_path / "trl", {}, completion_logits=False)
    assert ours["head_rows"] == completion_tokens  # one epoch: each completion token once, nothing else
    assert trl["head_rows"] is None
    assert len(ours["losses"]) == len(trl["losses"]) == 2
    assert ours["losses"] == pytest.approx(trl["losses"], rel=1e-3)  # the same loss, step by step



def _decoder_dtypes(env: dict) -> dict:
    """The decoder the engine builds for the tiny model, in a fresh process with `env`."""
    code = ("import json, torch; from pipeline.local.engine import load_fast; "
            "from pipeline.local.weights import tiny_model_dir; from pipeline.local import precision; "
            "f = load_fast(tiny_model_dir()); ws = [w for l in f.layers for w in (l.wqkv, l.wo, l.wgu, l.wdown)]; "
            "w = f.layers[0].wqkv; "
            "print(json.dumps({'int8': hasattr(w, 'scale'), 'dense': str(getattr(getattr(w, 'w', None), 'dtype', None)), "
            "'formats': sorted({type(x).__name__ for x in [*ws, f.lm_head]}), 'dtypes': sorted({str(x.w.dtype) "
            "for x in [*ws, f.lm_head] if hasattr(x, 'w')}), 'native': precision.choose().native_bf16}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **env}, check=True,
                         capture_output=True, text=True, timeout=600).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("cpu", ["native", "avx2"])
def test_engine_dense_weights_are_bf16_only_where_native(cpu):
    """Dense (non-int8) decoding weights: a bf16 matmul without native bf16 would be emulated."""
    env = {"DISTILL_DECODE_INT8": "0", "DISTILL_PRECISION": "auto", **(AVX2_ONLY if cpu == "avx2" else {})}
    result = _decoder_dtypes(env)
    assert not result["int8"] and result["formats"] == ["Dense"]
    assert result["dtypes"] == [result["dense"]]
    assert result["dense"] == ("torch.bfloat16" if result["native"] else "torch.float32")
    if cpu == "avx2":
        assert result["dense"] == "torch.float32"


@pytest.mark.parametrize("cpu", ["native", "avx2"])
def test_engine_decodes_with_int4_weights_on_both_kinds_of_cpu(cpu, monkeypatch):
    """The int4 decoder (the default): the layers' weights in torch's int4 format, the lm_head in int8 (both kernels
    convert the bf16 activations themselves; no oneDNN bf16 matmul runs), natively and on AVX2 only."""
    monkeypatch.delenv("DISTILL_DECODE_INT4", raising=False)
    result = _decoder_dtypes({"DISTILL_PRECISION": "auto", **(AVX2_ONLY if cpu == "avx2" else {})})
    assert result["formats"] == ["Int4", "Int8"] and result["dtypes"] == []  # int8: the lm_head
    # DISTILL_DECODE_INT4=0 goes back to int8 everywhere.
    result = _decoder_dtypes({"DISTILL_PRECISION": "auto", "DISTILL_DECODE_INT4": "0",
                              **(AVX2_ONLY if cpu == "avx2" else {})})
    assert result["formats"] == ["Int8"]


def test_auto_rule_halves_the_compute_but_not_the_updates():
    """The "auto" fine-tune: half the example passes of the first rule (3-8 epochs at batch 4), at
    batch 2, so about as many optimizer updates (docs/bench/backend.md measured the quality)."""
    from pipeline.local.dataset import auto_batch_size, auto_epochs

    def first_rule(n: int) -> int:
        return min(8, max(3, math.ceil(180 / n)))

    assert (auto_epochs(53), auto_batch_size(53)) == (2, 2)  # the fictional-person sample: 54 steps (was 56)
    for n in range(10, 2000):
        passes, before = auto_epochs(n) * n, first_rule(n) * n
        assert passes <= math.ceil(before / 2) + n
        assert math.ceil(n / auto_batch_size(n)) * auto_epochs(n) >= 0.8 * math.ceil(n / 4) * first_rule(n)


def test_trainer_applies_the_spec_learning_rate_schedule(tmp_path):
    """The schedule and warmup in spec.json reach TRL (benchmarks/local_train.py tries recipes
    through them): the rate rises over the warmup, then falls linearly; jobs.recipe_spec writes
    today's choice (constant, no warmup) into every job's spec."""
    from pipeline.local.dataset import read_examples
    from pipeline.local.jobs import recipe_spec

    assert recipe_spec(0.5) == {"learning_rate": 5e-4, "lr_scheduler": "constant", "warmup": 0}
    steps = 20
    rows = read_examples((ROOT / "data/samples/person_train.jsonl").read_bytes())[:steps]
    done = _train_tiny(tmp_path, {}, train=rows, valid=[], batch_size=1, total_steps=steps,
                       learning_rate=2e-3, lr_scheduler="linear", warmup=0.1)
    rates = done["learning_rates"]
    assert len(rates) == steps
    peak = rates.index(max(rates))
    assert 0 < peak < steps // 2 and max(rates) == pytest.approx(2e-3, rel=0.01) and rates[0] < max(rates)
    assert rates[peak:] == sorted(rates[peak:], reverse=True) and rates[-1] < rates[peak] / 4
