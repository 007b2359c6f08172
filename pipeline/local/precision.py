"""Which number formats the local model computes in, chosen by what this CPU does natively.

bfloat16 is ~4x faster than float32 for matmuls on a CPU with AVX512-BF16 or AMX, but ~50x SLOWER
where it is emulated (AVX2-only laptops, most cloud VMs): measured here, a 512x576x1536 matmul ran
165 GFLOP/s in bf16 natively and 0.8 GFLOP/s with oneDNN capped to AVX2, against ~35-40 in fp32.
So bf16 is used only where it is native, and float32 everywhere else.

Fine-tuning where bf16 is native runs only the frozen weights' matmuls in bf16 (the base's linear
layers and the LM head, cast once: pipeline/local/frozen_bf16.py) and everything else in float32.
bf16 autocast, used before, re-cast every frozen weight in each forward and moved attention and norms
to bf16 too: on AMX float32 trained the demos in 0.77-0.91x the seconds of autocast, so training was
float32 everywhere for a while (docs/bench/recipe.md, which also measures the casts kept now).

The decision, made once per process and logged once:
1. `DISTILL_PRECISION=fp32|bf16` forces it (bf16 on a CPU without it is allowed, with a warning).
2. Otherwise (`auto`) the CPU flags decide, honouring the knobs that make a CPU behave like an older
   one: `ATEN_CPU_CAPABILITY` (torch's own kernels; `torch.backends.cpu.get_cpu_capability()`
   reflects it) and `ONEDNN_MAX_CPU_ISA` (oneDNN, which runs the bf16 matmuls; only its value tells).
3. Where the flags say bf16 is native (or cannot tell: not x86), a short matmul probe confirms that
   bf16 really beats fp32; its result is cached in the workspace, keyed by CPU, torch and knobs (a
   result that contradicts native flags is measured again and not cached).

Decoding: weight-only int4 (`torch._weight_int4pack_mm_for_cpu`) or int8 (`torch._weight_int8pack_mm`),
whose kernels are torch's own vectorised code and take bf16 activations, stay fast without native bf16
(int8: 86 us per 576x1536 matvec with oneDNN and ATen capped to AVX2, against 174 us for the fp32
matvec; int4 ~1.4x faster than int8 there, ~2x natively). Every other decoding op uses `compute_dtype`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline import config

log = logging.getLogger("distill.precision")
ENV = config.PRECISION.name
CHOICES = ("auto", "fp32", "bf16")
CACHE_NAME = "precision_probe.json"
# oneDNN's ISA names, lowest first (its dnnl_cpu_isa_t docs); native bf16 dot products start at
# AVX512_CORE_BF16. AVX2_VNNI_2 only converts to/from bf16, so it counts as not native.
_ONEDNN_ISAS = ("sse41", "avx", "avx2", "avx2_vnni", "avx2_vnni_2", "avx512_core", "avx512_core_vnni",
                "avx512_core_bf16", "avx10_1_512", "avx512_core_fp16", "avx10_1_512_amx", "avx512_core_amx",
                "avx10_1_512_amx_fp16", "avx512_core_amx_fp16", "avx10_2_512", "avx10_2_512_amx_2")
_FIRST_BF16_ISA = _ONEDNN_ISAS.index("avx512_core_bf16")
# bf16 must beat fp32 by this much in the probe to be used (native: ~4x here; emulated: ~0.02x).
MIN_SPEEDUP = 1.2


@dataclass(frozen=True)
class Precision:
    train: str  # "bf16" (the frozen weights' matmuls; the rest float32) or "fp32": how the trainer computes
    compute: str  # "bf16" or "fp32": activations and dense weights when decoding
    decode_weights: str  # "int4", "int8", "bf16" or "fp32": how decoding stores the linear layers' weights
    native_bf16: bool  # what the CPU (as capped by the knobs) can do, whatever was chosen
    reason: str  # one short sentence: why

    @property
    def compute_dtype(self):
        import torch

        return torch.bfloat16 if self.compute == "bf16" else torch.float32


def cpu_facts() -> dict:
    """What torch and the environment say about this CPU (cheap: no computation)."""
    import torch

    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return {
        "cpu": str(caps.get("cpu_name") or platform.processor() or platform.machine()),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "aten_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""),
        "avx512_bf16": bool(caps.get("avx512_bf16")),
        "amx_bf16": bool(caps.get("amx_bf16")),
        "avx512_vnni": bool(caps.get("avx512_vnni")),
    }


def _onednn_allows_bf16(value: str) -> bool:
    name = value.strip().lower()
    if name in ("", "all", "default"):
        return True
    if name not in _ONEDNN_ISAS:
        return False  # an ISA name we do not know: be safe, fp32 is never emulated
    return _ONEDNN_ISAS.index(name) >= _FIRST_BF16_ISA


def flags_say_native(facts: dict) -> bool | None:
    """True/False from the flags on x86; None where the flags cannot tell (other architectures)."""
    if facts["machine"].lower() not in ("x86_64", "amd64", "i686", "x86"):
        return None
    has = facts["avx512_bf16"] or facts["amx_bf16"]
    aten_ok = str(facts["aten_capability"]).upper().startswith("AVX512")
    return bool(has and aten_ok and _onednn_allows_bf16(facts["onednn_max_isa"]))


def probe(budget_s: float = 0.5) -> dict:
    """Times the same matmul in fp32 and bf16 on one thread, alternating, and compares each format's
    fastest call. Another process's load slows some calls of both formats; it cannot make the fastest
    bf16 call slower than the fastest fp32 one where bf16 is really ~4x faster. (The first version
    took each format's mean, fp32's calls first, so load during the bf16 half alone could turn AMX
    into "no native bf16": it fell under 1.2x in 1 of 40 loaded rounds, and most likely did so once
    under the test suite; docs/bench/backend.md.)"""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a32, b32 = torch.randn(256, 576), torch.randn(576, 576)
        pairs = {"fp32": (a32, b32), "bf16": (a32.bfloat16(), b32.bfloat16())}
        best = dict.fromkeys(pairs, float("inf"))
        for a, b in pairs.values():
            a @ b  # warm-up (oneDNN builds its kernel here)
        rounds, start = 0, time.perf_counter()
        while rounds < 20 and time.perf_counter() - start < budget_s:
            for name, (a, b) in pairs.items():
                began = time.perf_counter()
                a @ b
                best[name] = min(best[name], time.perf_counter() - began)
            rounds += 1
    finally:
        torch.set_num_threads(threads)
    return {"fp32_s": best["fp32"], "bf16_s": best["bf16"], "bf16_speedup": best["fp32"] / best["bf16"]}


def _cache_path() -> Path | None:
    try:
        from pipeline import workspace

        return workspace.home() / CACHE_NAME
    except Exception:  # noqa: BLE001 - an unwritable workspace only costs a re-probe
        return None


def cached_probe(facts: dict, retries: int = 2) -> dict:
    """The probe's result for this CPU + torch + knobs, measured once and kept in the workspace.

    A result that contradicts flags saying bf16 is native is measured again (`retries` times, the best
    kept) and never cached: a busy machine must not decide for every later process, and a CPU whose
    flags really overstate it only costs each process another second."""
    key = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    path = _cache_path()
    cache: dict = {}
    if path is not None and path.is_file():
        try:
            cache = json.loads(path.read_text())
        except ValueError:
            cache = {}
        if key in cache:
            return cache[key]
    result = probe()
    if flags_say_native(facts):
        for _ in range(retries):
            if result["bf16_speedup"] >= MIN_SPEEDUP:
                break
            again = probe()
            result = max(result, again, key=lambda r: r["bf16_speedup"])
        if result["bf16_speedup"] < MIN_SPEEDUP:
            log.warning("the flags say this CPU has native bf16 but %d probes measured bf16 at %.2fx fp32 at best; "
                        "not cached, so the next process measures again", retries + 1, result["bf16_speedup"])
            return result
    if path is not None:
        cache[key] = result
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        try:
            tmp.write_text(json.dumps(cache))
            tmp.replace(path)
        except OSError:
            pass
    return result


def decide(facts: dict, forced: str = "auto", measure=cached_probe) -> Precision:
    """The choice for these facts; `measure` runs only where the flags say native or cannot tell."""
    native = flags_say_native(facts)
    reason = ""
    if native is not False:
        speedup = measure(facts)["bf16_speedup"]
        confirmed = speedup >= MIN_SPEEDUP
        if native is None:
            reason = f"probe: bf16 matmul {speedup:.1f}x fp32"
        elif not confirmed:
            reason = f"flags say native bf16 but the probe measured bf16 at {speedup:.2f}x fp32"
        native = confirmed
    if not reason:
        reason = ("native bf16 (" + ("AMX" if facts["amx_bf16"] else "AVX512-BF16") + ")" if native else
                  f"no native bf16 (torch kernels {facts['aten_capability']}"
                  + (f", oneDNN capped at {facts['onednn_max_isa']}" if facts["onednn_max_isa"] else "") + ")")
    mode = forced if forced in CHOICES else "auto"
    if mode == "auto":
        use = "bf16" if native else "fp32"
        return Precision(train=use, compute=use, decode_weights=_quantized(), native_bf16=native, reason=reason)
    if mode == "bf16" and not native:
        log.warning("%s=bf16 on a CPU without native bf16: training and decoding will be very slow", ENV)
    weights = _quantized() if mode == "bf16" else "fp32"  # fp32 = no bf16 anywhere, int4/int8 need bf16 activations
    return Precision(train=mode, compute=mode, decode_weights=weights, native_bf16=native,
                     reason=f"forced by {ENV}={mode}; {reason}")


def _quantized() -> str:
    """int4 weight-only layers by default (~1.5x faster than int8 on a quiet machine; the demo runs with it
    since the crash of its earlier runs, misaligned cached weights, was fixed in FastLlama.load; see
    docs/bench/backend.md); DISTILL_DECODE_INT4=0 keeps int8."""
    return "int4" if config.DECODE_INT4.get() else "int8"


@functools.cache
def choose() -> Precision:
    """This process's choice (decided once, logged once)."""
    forced = config.PRECISION.get()
    choice = decide(cpu_facts(), forced)
    log.info("precision: %s", summary(choice))
    return choice


def summary(choice: Precision | None = None) -> str:
    """One line for people: what trains and decodes in which format, and why."""
    p = choice or choose()
    decode = {"int4": f"int4 weights, {p.compute} activations", "int8": f"int8 weights, {p.compute} activations", "bf16": "bf16", "fp32": "fp32"}[p.decode_weights]
    return f"fine-tuning {training_text(p)}, decoding with {decode} — {p.reason}; {ENV}=fp32|bf16 forces it."


def training_text(choice: Precision) -> str:
    """How the fine-tune computes, in words (Settings, the job's events)."""
    return "with the frozen weights' matmuls in bf16, the rest in fp32" if choice.train == "bf16" else "in fp32"


def as_dict(choice: Precision | None = None) -> dict:
    return asdict(choice or choose())


def settings_line() -> str:
    """The read-only line the Settings tab shows under Workspace."""
    return f"**Local model compute:** {summary()}"
