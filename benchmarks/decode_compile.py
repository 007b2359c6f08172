"""Does torch.compile (inductor, CPU C++ codegen) speed up the local decoder's single-token step?

Times, in one process on the decoder the engine builds for this CPU (pipeline/local/engine.py: int4
layers + int8 lm_head by default), the shipping eager step (`FastLlama.forward` -> `_decode`) against
two compiled versions, alternating rounds so all see the same machine load:
  * "step": the whole single-token step as one graph, static shapes except the KV length
    (`mark_dynamic` on each sequence's cache span, so it does not recompile every token). Inductor
    keeps the int4/int8 weight kernels as extern calls, but functionalizing the cache write into a
    span of the cache copies the whole span (all layers) once per layer;
  * "layer": one graph for a layer's norm + qkv + RoPE and one for o-proj + MLP (static shapes; the same
    two graphs serve all 30 layers), with the cache write and attention left eager in between;
reporting compile_s (the first call: dynamo trace + inductor codegen + the C++ compiler, per stream
count; inductor's FX graph cache on disk shortens a second process's: run the command twice),
tokens/s of one stream and of three decoded together (one thread, after a 64-token prefill), and
whether each gives the eager step's greedy tokens. RoPE is written out of place in the compiled code
(inductor has no complex kernels).

    .venv/bin/python benchmarks/decode_compile.py [--tokens 48] [--rounds 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def step_core(fast, ids, rotation, spans):
    """`FastLlama._decode`'s arithmetic over tensors only (what dynamo traces): token ids, the RoPE rows,
    and per sequence its cache span [layers, 2, kv_heads, length + 1, head_dim] (new position last)."""
    import torch
    import torch.nn.functional as F

    from pipeline.local.fastlm import attend_new_token

    total, shape, eps = len(spans), (fast.hidden,), fast.eps
    x = fast.embed[ids].float()
    for index, layer in enumerate(fast.layers):
        qkv = layer.wqkv(F.rms_norm(x, shape, layer.ln1, eps)).float()
        qkv = torch.view_as_real(torch.view_as_complex(qkv.view(total, -1, 2)) * rotation).view(total, -1)
        x = x + layer.wo(attend_new_token(qkv, spans, index, fast.kv_heads, fast.head_dim))
        gate_up = layer.wgu(F.rms_norm(x, shape, layer.ln2, eps))
        x = x + layer.wdown(F.silu(gate_up[:, : fast.intermediate].float()) * gate_up[:, fast.intermediate:])
    return fast.lm_head(F.rms_norm(x, shape, fast.norm, eps)).float()


def layer_step(fast, pre, post, caches, ids):
    """One decode step through the per-layer compiled graphs `pre` and `post`."""
    import torch.nn.functional as F

    from pipeline.local.fastlm import attend_new_token

    for cache in caches:
        cache.reserve(1)
    positions = [c.length for c in caches]
    rotation = fast._rotations(positions)
    x = fast.embed[ids].float()
    spans = [c.kv[:, :, :, : p + 1] for c, p in zip(caches, positions, strict=True)]
    for index, layer in enumerate(fast.layers):
        qkv = pre(fast, layer, x, rotation)
        x = post(fast, layer, x, attend_new_token(qkv, spans, index, fast.kv_heads, fast.head_dim))
    for cache in caches:
        cache.length += 1
    return fast.lm_head(F.rms_norm(x, (fast.hidden,), fast.norm, fast.eps)).float()


def layer_pre(fast, layer, x, rotation):
    import torch
    import torch.nn.functional as F

    qkv = layer.wqkv(F.rms_norm(x, (fast.hidden,), layer.ln1, fast.eps)).float()
    return torch.view_as_real(torch.view_as_complex(qkv.view(qkv.shape[0], -1, 2)) * rotation).view(qkv.shape[0], -1)


def layer_post(fast, layer, x, attn):
    import torch.nn.functional as F

    x = x + layer.wo(attn)
    gate_up = layer.wgu(F.rms_norm(x, (fast.hidden,), layer.ln2, fast.eps))
    return x + layer.wdown(F.silu(gate_up[:, : fast.intermediate].float()) * gate_up[:, fast.intermediate:])


def run(fast, compiled, streams: int, tokens: int) -> tuple[float, float, list]:
    """(seconds of the first step, tokens/s of the rest, greedy tokens); compiled=None: the eager step,
    a (pre, post) pair: the per-layer graphs, else the whole-step graph."""
    import torch

    caches = [fast.new_cache() for _ in range(streams)]
    out: list = []
    with torch.inference_mode():
        for i, cache in enumerate(caches):
            fast.forward([(list(range(100 + i, 164 + i)), cache)])
        ids = [5] * streams
        start = time.perf_counter()
        for i in range(tokens):
            if compiled is None:
                logits = fast.forward([([t], c) for t, c in zip(ids, caches, strict=True)])
            elif isinstance(compiled, tuple):
                logits = layer_step(fast, *compiled, caches, torch.tensor(ids))
            else:
                for cache in caches:
                    cache.reserve(1)
                positions = [c.length for c in caches]
                spans = [c.kv[:, :, :, : p + 1] for c, p in zip(caches, positions, strict=True)]
                for span in spans:
                    torch._dynamo.mark_dynamic(span, 3)
                logits = compiled(fast, torch.tensor(ids), fast._rotations(positions), spans)
                for cache in caches:
                    cache.length += 1
            ids = logits.argmax(-1).tolist()
            out.append(ids)
            if i == 0:
                first, start = time.perf_counter() - start, time.perf_counter()
    return first, (tokens - 1) * streams / (time.perf_counter() - start), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import torch

    from benchmarks.machine_facts import cpu_name
    from pipeline.local import weights
    from pipeline.local.engine import load_fast

    torch.set_num_threads(1)
    fast = load_fast(weights.base_model_dir())
    variants = {"step": torch.compile(step_core),
                "layer": (torch.compile(layer_pre, dynamic=False), torch.compile(layer_post, dynamic=False))}
    result = {"machine": {"cpu": cpu_name(), "nproc": os.cpu_count(), "torch": torch.__version__,
                          "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                          "load_average_at_start": os.getloadavg()},
              "weights": fast.weights, "compile_s": {}, "same_greedy_tokens": {}}
    rates: dict = {}
    for streams in (1, 3):
        _, _, eager_tokens = run(fast, None, streams, args.tokens)
        for name, compiled in variants.items():
            first, _, compiled_tokens = run(fast, compiled, streams, args.tokens)
            result["compile_s"][f"{name}_{streams}streams"] = round(first, 1)
            result["same_greedy_tokens"][f"{name}_{streams}streams"] = eager_tokens == compiled_tokens
        for _ in range(args.rounds):
            for name, fn in (("eager", None), *variants.items()):
                rates.setdefault(f"{name}_{streams}streams", []).append(run(fast, fn, streams, args.tokens)[1])
    med = {k: round(statistics.median(v), 1) for k, v in rates.items()}
    result["tok_s_median"], result["tok_s_all_rounds"] = med, {k: [round(x, 1) for x in v] for k, v in rates.items()}
    result["machine"]["load_average_at_end"] = os.getloadavg()
    result["summary"] = (f"{result['machine']['cpu_capability']}, {fast.weights}, 1 thread, tok/s eager / whole step "
                         f"compiled / per layer compiled: 1 stream {med['eager_1streams']} / {med['step_1streams']} / "
                         f"{med['layer_1streams']}, 3 streams {med['eager_3streams']} / {med['step_3streams']} / "
                         f"{med['layer_3streams']}; compile s {result['compile_s']}; same greedy tokens "
                         f"{all(result['same_greedy_tokens'].values())}")
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
