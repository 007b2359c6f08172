"""A lean Llama forward pass for decoding on CPU, fed by a transformers model's weights.

Why not `model.generate`: for a 135M model on two cores, most of generate's time is Python overhead
(mask building, cache bookkeeping, logits processors) and fp32 weight traffic, ~18 tokens/s here.
This module keeps the linear weights in int4 or int8 (or bfloat16 / float32; see qweights.py), fuses q/k/v
and gate/up into one matmul each, and decodes several sequences in one pass: the linear layers (where the
weights are read from memory) run once for the whole batch, and only attention runs per sequence, each
against its own KV cache. So concurrent streams share the cost of reading the weights. A fine-tuned
model is the base's weights plus its LoRA adapter, applied unmerged in float32 (`with_adapter`); its rows
and the base model's (or other fine-tuned models') go through one pass together (`forward_together`):
the three chat panes and the base-vs-fine-tuned benchmark read the weights once per step, not once per
model.

A decode step is ~30 layers x a handful of small ops, so each op's dispatch cost counts as much as its
arithmetic. The layout is chosen to keep the op count low:
  * q/k weight rows are stored pair-interleaved (q0, q32, q1, q33, ...) so RoPE is one in-place complex
    multiply over the whole qkv row (v's pairs are multiplied by 1, which is exact); q and k stay
    interleaved, and q.k is the same sum in another order;
  * roped k and v end up side by side in the fused qkv output, so one copy appends both to the cache;
  * a single new token's attention is one `scaled_dot_product_attention` call with the query heads
    of each key/value head as its "query length", with no mask (no GQA expansion);
  * residual adds are in place, norms are `F.rms_norm`.
Numerics follow transformers' LlamaForCausalLM (RMSNorm and the residual stream in float32, GQA);
the tests check the logits against the transformers model, and that a batch gives each sequence what
it gets alone.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from pipeline import config
from pipeline.local import native, qweights
from pipeline.local.qweights import Weight

log = logging.getLogger(__name__)


class KVCache:
    """Keys and values of one sequence, [layers, 2 (k, v), kv_heads, capacity, head_dim]; grows by doubling."""

    def __init__(self, layers: int, kv_heads: int, head_dim: int, dtype: torch.dtype, capacity: int = 256):
        self.kv = torch.empty(layers, 2, kv_heads, capacity, head_dim, dtype=dtype)
        self.length = 0

    def reserve(self, extra: int) -> None:
        need = self.length + extra
        capacity = self.kv.shape[3]
        if need <= capacity:
            return
        old = self.kv
        shape = list(old.shape)
        shape[3] = max(need, capacity * 2)
        self.kv = torch.empty(shape, dtype=old.dtype)
        self.kv[:, :, :, : self.length] = old[:, :, :, : self.length]


ALIGN_BYTES = 64
# A prefill of more rows (prompt tokens of all sequences together) is split into passes of about this
# many: 36 prompts of 60 tokens took 2.4 s in one pass of 2,160 rows against ~2 s in two of 1,080
# (AVX512, 2 threads): a pass's activations outgrow the caches.
PREFILL_ROWS = 1024
# The C decode step (native.py) for steps whose sequences are all shorter than this: its single-threaded
# attention ran ~1.5x slower per layer than torch's SDPA from ~1,000 positions, and at 512 the step was
# 0.86x (one stream) and 1.00x (three) of the torch ops' time (docs/bench/backend.md).
NATIVE_POSITIONS = 512
KERNEL_PROBE_CALLS = 15  # calls of each int4 kernel, alternated, when choosing between them (~5 ms)
# The last measured choice of this process, in words, for the Settings tab (a fact of the machine, like
# precision.choose(); not a visitor's state).
_kernel_note: str | None = None
SCREEN_TOP = 64  # decode-step logits taken from the int8 lm_head: the int4 copy's highest this many


def _aligned(t: torch.Tensor) -> torch.Tensor:
    """`t` itself when its data is 64-byte aligned, else an aligned copy (torch's allocator aligns to 64)."""
    return t if t.data_ptr() % ALIGN_BYTES == 0 else t.clone()


Segment = tuple[list[int], KVCache]  # a sequence's new tokens and its cache
Lora = dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]]  # (layer, fused weight) -> (A^T, B^T), float32
AdapterRows = list[tuple[int, int, Lora]]  # [start, stop) rows of a pass and the adapter applied to them


@dataclass
class _Layer:
    ln1: torch.Tensor
    wqkv: Weight
    wo: Weight
    ln2: torch.Tensor
    wgu: Weight
    wdown: Weight


def _interleave(weight: torch.Tensor, heads: int, head_dim: int) -> torch.Tensor:
    """Rows of a q or k projection reordered per head from rotate-half to pair-interleaved layout."""
    half = head_dim // 2
    order = torch.stack([torch.arange(half), torch.arange(half) + half], dim=1).flatten()
    return weight.view(heads, head_dim, -1)[:, order].reshape(heads * head_dim, -1)


class FastLlama:
    """Decoding-only Llama over weights copied out of a (possibly LoRA-merged) transformers model."""

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype = torch.bfloat16, int8: bool = False,
                 weights: str | None = None):
        """`weights`: "int4", "int8" or "dense" (in `dtype`); int8=True is the older spelling of "int8"."""
        kind = weights or ("int8" if int8 else "dense")
        cfg = model.config
        rope = getattr(cfg, "rope_parameters", None) or {}
        if rope.get("rope_type", "default") != "default":
            raise ValueError(f"FastLlama supports default RoPE only, not {rope.get('rope_type')}")
        heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        act = dtype if kind == "dense" else torch.bfloat16  # the quantized kernels take bf16 activations
        meta = {"heads": heads, "kv_heads": kv_heads, "head_dim": hd, "eps": cfg.rms_norm_eps,
                "max_positions": cfg.max_position_embeddings, "hidden": cfg.hidden_size,
                "theta": rope.get("rope_theta") or getattr(cfg, "rope_theta", 10000.0),
                "dtype": str(act).removeprefix("torch."), "weights": kind}

        def w(name: str, t: torch.Tensor) -> dict[str, torch.Tensor]:
            return qweights.quantize(name, t, kind, dtype)

        inner = model.model
        # The lm_head (SmolLM2's tied embedding) in int4 changed the top token at ~15% of positions of
        # today's answers; int4 everywhere else with an int8 lm_head, at ~3% (docs/bench/backend.md).
        head = qweights.quantize("lm_head", model.lm_head.weight, "int8" if kind == "int4" else kind, dtype)
        if kind == "int4":  # an int4 copy that picks the candidates of a decode step (see `_head`)
            head |= qweights.quantize("lm_screen", model.lm_head.weight, "int4", dtype)
        tensors = {"embed": inner.embed_tokens.weight.detach().to(act).contiguous(),
                   "norm": inner.norm.weight.detach().float().contiguous(), **head}
        for i, layer in enumerate(inner.layers):
            att, mlp = layer.self_attn, layer.mlp
            qkv = torch.cat([_interleave(att.q_proj.weight.detach(), heads, hd),
                             _interleave(att.k_proj.weight.detach(), kv_heads, hd), att.v_proj.weight.detach()])
            tensors |= {f"{i}.ln1": layer.input_layernorm.weight.detach().float().contiguous(),
                        f"{i}.ln2": layer.post_attention_layernorm.weight.detach().float().contiguous(),
                        **w(f"{i}.wqkv", qkv), **w(f"{i}.wo", att.o_proj.weight),
                        **w(f"{i}.wgu", torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])),
                        **w(f"{i}.wdown", mlp.down_proj.weight)}
        self._setup(meta, tensors)

    def _setup(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        self.meta, self.tensors = meta, tensors
        self.heads, self.kv_heads, self.head_dim = meta["heads"], meta["kv_heads"], meta["head_dim"]
        self.eps, self.max_positions, self.hidden = meta["eps"], meta["max_positions"], meta["hidden"]
        self.weights, self.dtype = meta["weights"], getattr(torch, meta["dtype"])

        def w(name: str) -> Weight:
            return qweights.load(name, tensors)

        self.embed, self.norm, self.lm_head = tensors["embed"], tensors["norm"], w("lm_head")
        screen = w("lm_screen") if "lm_screen.q4" in tensors else None
        self.lm_screen = screen if isinstance(screen, qweights.Int4) and isinstance(self.lm_head, qweights.Int8) \
            else None
        count = sum(1 for name in tensors if name.endswith(".ln1"))
        self.layers = [_Layer(ln1=tensors[f"{i}.ln1"], wqkv=w(f"{i}.wqkv"), wo=w(f"{i}.wo"), ln2=tensors[f"{i}.ln2"],
                              wgu=w(f"{i}.wgu"), wdown=w(f"{i}.wdown")) for i in range(count)]
        self.intermediate = self.layers[0].wgu.out_features // 2
        hd = self.head_dim
        inv_freq = 1.0 / (meta["theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        freqs = torch.outer(torch.arange(self.max_positions, dtype=torch.float32), inv_freq)
        self.rotation = torch.complex(freqs.cos(), freqs.sin())  # [positions, head_dim / 2]
        self.rope_table = torch.view_as_real(self.rotation).contiguous()  # [positions, head_dim / 2, (cos, sin)]
        # The C decode step (native.py) feeds the quantized weights' small-row kernels bf16 rows itself.
        self.quantized = all(isinstance(getattr(layer, name), qweights.Int4 | qweights.Int8)
                             for layer in self.layers for name in ("wqkv", "wo", "wgu", "wdown"))
        # Every int4 weight (and the lm_head's int4 copy) also in int4_linear.c's blocks: a conversion made
        # with this code. Which int4 kernel native steps run: "c" or "torch", chosen once (`_c_int4`).
        self.has_blocks = self.quantized and self.lm_screen is not None and all(
            getattr(getattr(layer, name), "blocks", None) is not None
            for layer in self.layers for name in ("wqkv", "wo", "wgu", "wdown")) and self.lm_screen.blocks is not None
        self.int4_kernel: str | None = None
        # A fine-tuned decoder (with_adapter) is its base's weights (`root`) plus `lora`; the base is its own root.
        self.root: FastLlama = self
        self.lora: Lora = {}

    def with_adapter(self, adapter_dir: Path) -> FastLlama:
        """This decoder plus a LoRA adapter applied unmerged in float32 (shares the base's weights, and
        decodes in one pass with it: forward_together).

        Raises qweights.UnsupportedAdapter for adapters that are not plain LoRA on the projections."""
        if self.root is not self:
            raise qweights.UnsupportedAdapter("this decoder already has an adapter")
        lora = qweights.read_lora(adapter_dir)
        if max((layer for layer, _ in lora), default=-1) >= len(self.layers):
            raise qweights.UnsupportedAdapter("the adapter has more layers than the model")
        hidden, hd = self.hidden, self.head_dim
        q_width, kv_width = self.heads * hd, self.kv_heads * hd
        widths = {"q_proj": (hidden, q_width), "k_proj": (hidden, kv_width), "v_proj": (hidden, kv_width),
                  "o_proj": (q_width, hidden), "gate_proj": (hidden, self.intermediate),
                  "up_proj": (hidden, self.intermediate), "down_proj": (self.intermediate, hidden)}
        fused = {"wqkv": ("q_proj", "k_proj", "v_proj"), "wo": ("o_proj",), "wgu": ("gate_proj", "up_proj"),
                 "wdown": ("down_proj",)}
        adapter: Lora = {}
        for index in range(len(self.layers)):
            for field_name, names in fused.items():
                if not any((index, n) in lora for n in names):
                    continue
                a_list, b_list = [], []
                for name in names:
                    a, b = lora.get((index, name), (torch.zeros(0, widths[name][0]),
                                                    torch.zeros(widths[name][1], 0)))
                    if a.shape[1] != widths[name][0] or b.shape[0] != widths[name][1]:
                        raise qweights.UnsupportedAdapter(f"adapter shapes do not fit layer {index} {name}")
                    if name in ("q_proj", "k_proj"):  # the decoder stores q/k rows pair-interleaved
                        b = _interleave(b, b.shape[0] // hd, hd)
                    a_list.append(a)
                    b_list.append(b)
                adapter[(index, field_name)] = (torch.cat(a_list).t().contiguous(),
                                                torch.block_diag(*b_list).t().contiguous())
        clone = FastLlama.__new__(FastLlama)
        clone.__dict__.update(self.__dict__)  # the same weight tensors: nothing is copied
        clone.root, clone.lora = self, adapter
        return clone

    def save(self, path: Path) -> None:
        """Write the converted weights (safetensors, written aside then renamed: readers never see half)."""
        from safetensors.torch import save_file

        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        # Dense fp32 weights of a tied-embedding model: embed and lm_head are one tensor, which
        # safetensors refuses to write; each is saved on its own.
        tensors, seen = {}, set()
        for name, t in self.tensors.items():
            ptr = t.untyped_storage().data_ptr()
            tensors[name] = t.clone() if ptr in seen else t
            seen.add(ptr)
        save_file(tensors, str(tmp), metadata={"fastlm": json.dumps(self.meta)})
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> FastLlama:
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), "pt") as f:
            meta = json.loads(f.metadata()["fastlm"])
        self = cls.__new__(cls)
        # Copies, not the loaded tensors: safetensors places each tensor at its offset in the file, which
        # need not be 64-byte aligned, and torch's int8/int4 CPU kernels load weights with aligned SIMD
        # instructions: a misaligned weight crashed the process (general protection fault) on first use.
        self._setup(meta, {name: _aligned(t) for name, t in load_file(str(path)).items()})
        return self

    def makes_dense_copies(self, rows: int) -> bool:
        """Would a pass of `rows` rows first make the quantized weights' dense copies (qweights.py)?"""
        return self.layers[0].wqkv.makes_dense_copy(rows)

    def new_cache(self) -> KVCache:
        return KVCache(len(self.layers), self.kv_heads, self.head_dim, torch.float32)

    def _rotations(self, positions: list[int]) -> torch.Tensor:
        """[tokens, q/k/v heads * head_dim / 2] complex: RoPE for the q and k pairs, 1 for the v pairs.

        The whole qkv row is then rotated in place by one complex multiply (v times 1 stays exact)."""
        rows = self.rotation[positions]
        v_pairs = self.kv_heads * self.head_dim // 2
        ones = torch.ones(len(positions), v_pairs, dtype=rows.dtype)
        return torch.cat([rows.repeat(1, self.heads + self.kv_heads), ones], dim=1)

    def forward(self, segments: list[Segment]) -> torch.Tensor:
        """Append each segment's tokens to its cache; float32 logits of each segment's last token."""
        return self.root.forward_together([(self, segments)])

    @torch.inference_mode()
    def forward_together(self, parts: list[tuple[FastLlama, list[Segment]]]) -> torch.Tensor:
        """`forward` for the segments of several decoders made from this one (itself, and fine-tuned ones
        from with_adapter) in one pass: logits in the order of `parts`. Each linear layer reads its weights
        once for every row, then adds each adapter's delta to its own rows only. A row gets the numbers
        of its own decoder's pass wherever the two passes' row counts take the same kernel (a pass of
        DENSE_FROM_ROWS rows or more takes the dense copy of quantized weights: qweights.py)."""
        if any(model.root is not self for model, _ in parts):
            raise ValueError("forward_together takes this decoder and the ones made from it by with_adapter")
        segments = [segment for _, group in parts for segment in group]
        sizes = [len(tokens) for tokens, _ in segments]
        if len(segments) > 1 and max(sizes) > 1 and sum(sizes) > PREFILL_ROWS:
            return torch.cat([self.forward_together(chunk) for chunk in _prefill_chunks(parts)])
        adapters: AdapterRows = []
        start = 0
        for model, group in parts:
            stop = start + sum(len(tokens) for tokens, _ in group)
            if model.lora and stop > start:
                adapters.append((start, stop, model.lora))
            start = stop
        if max(sizes) == 1:
            return self._decode(segments, adapters)
        positions = [p for (_, c), n in zip(segments, sizes, strict=True) for p in range(c.length, c.length + n)]
        if max(positions) >= self.max_positions:
            raise ValueError(f"The sequence is longer than the model's {self.max_positions}-token context.")
        for (_, cache), n in zip(segments, sizes, strict=True):
            cache.reserve(n)
        total, hd, heads, kv_heads = len(positions), self.head_dim, self.heads, self.kv_heads
        q_width = heads * hd
        rotation = self._rotations(positions)
        x = self.embed[[t for tokens, _ in segments for t in tokens]].float()
        shape = (self.hidden,)
        # A chunk appended after earlier tokens (a prompt whose start came from the prefix store): each
        # new token sees the past and itself. Built once per pass, not per layer.
        masks = [None if cache.length == 0 else
                 torch.arange(cache.length + n).unsqueeze(0) <= (torch.arange(n) + cache.length).unsqueeze(1)
                 for (_, cache), n in zip(segments, sizes, strict=True)]
        for index, layer in enumerate(self.layers):
            qkv = self._project(F.rms_norm(x, shape, layer.ln1, self.eps), index, "wqkv", adapters).float()
            # RoPE: the weights put each pair (x_j, x_j+half) side by side, so rotating is one complex multiply
            # in place; q and k stay pair-interleaved (q.k is the same sum in another order).
            torch.view_as_complex(qkv.view(total, -1, 2)).mul_(rotation)
            kv = qkv[:, q_width:].view(total, 2, kv_heads, hd)
            outputs, start = [], 0
            for (_, cache), n, mask in zip(segments, sizes, masks, strict=True):
                past, stop = cache.length, start + n
                cache.kv[index, :, :, past: past + n] = kv[start:stop].permute(1, 2, 0, 3)
                keys, values = cache.kv[index, 0, :, : past + n], cache.kv[index, 1, :, : past + n]
                query = qkv[start:stop, :q_width].view(n, heads, hd).transpose(0, 1)
                if mask is None:
                    out = F.scaled_dot_product_attention(query, keys, values, is_causal=True, enable_gqa=True)
                else:
                    out = F.scaled_dot_product_attention(query, keys, values, attn_mask=mask, enable_gqa=True)
                outputs.append(out.transpose(0, 1).reshape(n, q_width))
                start = stop
            x.add_(self._project(torch.cat(outputs) if len(outputs) > 1 else outputs[0], index, "wo", adapters))
            self._mlp(x, index, adapters)
        for (_, cache), n in zip(segments, sizes, strict=True):
            cache.length += n
        x = x[torch.tensor(sizes).cumsum(0) - 1]
        return self.lm_head(F.rms_norm(x, shape, self.norm, self.eps)).float()

    def _project(self, x: torch.Tensor, index: int, name: str, adapters: AdapterRows,
                 base: torch.Tensor | None = None) -> torch.Tensor:
        """Layer `index`'s fused weight `name` applied to x, plus each adapter's x A^T B^T on its rows (then
        float32, as `addmm` of the base output; rows without an adapter keep the kernel's own values).
        `base`: the weight's output for x, already computed by the caller (the native step's kernels)."""
        out = getattr(self.layers[index], name)(x) if base is None else base
        deltas = [(start, stop, lora[(index, name)]) for start, stop, lora in adapters if (index, name) in lora]
        if not deltas:
            return out
        out = out.float()
        for start, stop, (a_t, b_t) in deltas:
            if stop - start == x.shape[0]:  # one fine-tuned model's pass: no row copies
                return torch.addmm(out, torch.mm(x.float(), a_t), b_t)
            out[start:stop] = torch.addmm(out[start:stop], torch.mm(x[start:stop].float(), a_t), b_t)
        return out

    def _mlp(self, x: torch.Tensor, index: int, adapters: AdapterRows) -> None:
        gate_up = self._project(F.rms_norm(x, (self.hidden,), self.layers[index].ln2, self.eps), index, "wgu", adapters)
        gated = F.silu(gate_up[:, : self.intermediate].float()) * gate_up[:, self.intermediate:]
        x.add_(self._project(gated, index, "wdown", adapters))

    def _decode(self, segments: list[Segment], adapters: AdapterRows) -> torch.Tensor:
        """One new token per sequence: the same computation as `forward`, with fewer ops per layer (a step
        is ~30 layers x a few dozen small ops, where each op's dispatch costs about as much as its work)."""
        caches = [cache for _, cache in segments]
        positions = [cache.length for cache in caches]
        if max(positions) >= self.max_positions:
            raise ValueError(f"The sequence is longer than the model's {self.max_positions}-token context.")
        for cache in caches:
            cache.reserve(1)
        x = self.embed[[tokens[0] for tokens, _ in segments]].float()
        if self.quantized and len(caches) < qweights.DENSE_FROM_ROWS and max(positions) < NATIVE_POSITIONS:
            lib = native.library()
            if lib is not None:
                return self._decode_native(lib, x, caches, positions, adapters)
        total, hd, kv_heads, shape, eps = len(caches), self.head_dim, self.kv_heads, (self.hidden,), self.eps
        rotation = self._rotations(positions)
        # Per sequence, all layers' keys and values up to and including the new position: [layers, 2, kv, L, hd].
        spans = [cache.kv[:, :, :, : p + 1] for cache, p in zip(caches, positions, strict=True)]
        for index, layer in enumerate(self.layers):
            qkv = self._project(F.rms_norm(x, shape, layer.ln1, eps), index, "wqkv", adapters).float()
            torch.view_as_complex(qkv.view(total, -1, 2)).mul_(rotation)
            x.add_(self._project(attend_new_token(qkv, spans, index, kv_heads, hd), index, "wo", adapters))
            self._mlp(x, index, adapters)
        for cache in caches:
            cache.length += 1
        return self._head(F.rms_norm(x, shape, self.norm, eps))

    def _decode_native(self, lib: ctypes.CDLL, x: torch.Tensor, caches: list[KVCache], positions: list[int],
                       adapters: AdapterRows) -> torch.Tensor:
        """`_decode` with each layer's ops between the weight kernels in C (native.py, decode_step.c): per
        layer three C calls and four weight kernels instead of ~25 torch ops. The weight kernels are torch's
        int4/int8 ones on bf16 rows, or int4_linear.c's on float32 rows where it measured faster on this
        CPU (`_c_int4`). The same arithmetic in float32, summed in another order (the tests compare both
        paths' logits and greedy tokens). `x`: the new tokens' embeddings (float32, updated in place as the
        residual stream)."""
        rows, hidden, hd = len(caches), self.hidden, self.head_dim
        q_width, width = self.heads * hd, (self.heads + 2 * self.kv_heads) * hd
        # Buffers reused by every layer: each C call writes its result in float32 (for adapters, the residual)
        # and in bf16 (the next weight kernel's input). Their addresses are taken once: a step makes ~120
        # C calls, where each Python-level attribute access shows.
        h, h_bf16 = torch.empty(rows, hidden), torch.empty(rows, hidden, dtype=torch.bfloat16)
        att, att_bf16 = torch.empty(rows, q_width), torch.empty(rows, q_width, dtype=torch.bfloat16)
        act = torch.empty(rows, self.intermediate)
        act_bf16 = torch.empty(rows, self.intermediate, dtype=torch.bfloat16)
        scratch = torch.empty(width + (self.heads // self.kv_heads) * (max(positions) + 2))
        pos = torch.tensor(positions, dtype=torch.int64)
        cache_ptrs = torch.tensor([cache.kv.data_ptr() for cache in caches], dtype=torch.int64)
        capacity = torch.tensor([cache.kv.shape[3] for cache in caches], dtype=torch.int64)
        x_p, h_p, hb_p, att_p, attb_p, act_p, actb_p = (t.data_ptr() for t in (x, h, h_bf16, att, att_bf16, act,
                                                                               act_bf16))
        attend_args = (rows, self.heads, self.kv_heads, hd, self.rope_table.data_ptr(), pos.data_ptr(),
                       cache_ptrs.data_ptr(), capacity.data_ptr())
        add_norm, attend, silu_mul, scratch_p = lib.add_norm, lib.attend, lib.silu_mul, scratch.data_ptr()
        eps, bf16, inter = self.eps, torch.bfloat16, self.intermediate
        linear = self._native_linear(lib, rows, adapters)
        delta: torch.Tensor | None = None  # the previous layer's MLP output, added to x by the next norm
        for index, layer in enumerate(self.layers):
            if delta is None:
                add_norm(x_p, None, 0, layer.ln1.data_ptr(), rows, hidden, eps, h_p, hb_p)
            else:
                add_norm(x_p, delta.data_ptr(), delta.dtype == bf16, layer.ln1.data_ptr(), rows, hidden, eps, h_p, hb_p)
            qkv = linear(index, "wqkv", h, h_bf16)
            attend(qkv.data_ptr(), qkv.dtype == bf16, *attend_args, index, scratch_p, att_p, attb_p)
            out = linear(index, "wo", att, att_bf16)
            add_norm(x_p, out.data_ptr(), out.dtype == bf16, layer.ln2.data_ptr(), rows, hidden, eps, h_p, hb_p)
            gate_up = linear(index, "wgu", h, h_bf16)
            silu_mul(gate_up.data_ptr(), gate_up.dtype == bf16, rows, inter, act_p, actb_p)
            delta = linear(index, "wdown", act, act_bf16)
        add_norm(x_p, delta.data_ptr(), delta.dtype == bf16, self.norm.data_ptr(), rows, hidden, eps, h_p, hb_p)
        for cache in caches:
            cache.length += 1
        return self._head(h, lib if self._c_int4(lib) else None)

    def _native_linear(self, lib: ctypes.CDLL, rows: int, adapters: AdapterRows):
        """f(layer index, weight name, x float32, x as bf16) -> the weight's output plus its adapter deltas,
        by the int4 kernel chosen for this CPU (`_c_int4`)."""
        if not self._c_int4(lib):
            def torch_kernel(index: int, name: str, x: torch.Tensor, x_bf16: torch.Tensor) -> torch.Tensor:
                base = getattr(self.layers[index], name).kernel(x_bf16)
                return self._project(x, index, name, adapters, base) if adapters else base
            return torch_kernel
        threads = torch.get_num_threads()
        outputs: dict[int, torch.Tensor] = {}  # by output width: one buffer per shape, reused by every layer

        def c_kernel(index: int, name: str, x: torch.Tensor, x_bf16: torch.Tensor) -> torch.Tensor:  # noqa: ARG001
            weight = getattr(self.layers[index], name)
            out = outputs.get(weight.out_features)
            if out is None:
                out = outputs[weight.out_features] = torch.empty(rows, weight.out_features)
            weight.native(lib, x, out, threads)
            return self._project(x, index, name, adapters, out) if adapters else out
        return c_kernel

    def choose_int4_kernel(self, lib: ctypes.CDLL | None) -> None:
        """Make the int4 kernel choice now (the engine does while loading, so no chat waits for it)."""
        if lib is not None:
            self._c_int4(lib)

    def _c_int4(self, lib: ctypes.CDLL) -> bool:
        """Whether native steps run the int4 weights through int4_linear.c rather than torch's kernel:
        DISTILL_INT4_KERNEL, else measured once on this CPU (`_faster_kernel`), when the engine loads the
        model or else at the first native step.
        One choice for every number of rows, so a sequence decoded alone or beside others gets the same
        numbers (each row's sums are the same either way, in both kernels)."""
        root = self.root
        if not root.has_blocks:
            return False
        if root.int4_kernel is None:
            root.int4_kernel = _faster_kernel(lib, root.layers[0].wgu)
        return root.int4_kernel == "c"

    def _head(self, h: torch.Tensor, lib: ctypes.CDLL | None = None) -> torch.Tensor:
        """float32 logits of a decode step. With int4 weights, the int8 lm_head (49152 x 576, a fifth of a
        token's weight bytes) is read only where it matters: its int4 copy gives every logit in half the
        time, and the SCREEN_TOP highest are replaced by the int8 head's own values for those tokens (same
        kernel, so the same numbers). The int8 head's top token is among them unless 4-bit rounding moved
        it below SCREEN_TOP others, so greedy tokens are the int8 head's; a sampled token's tail
        probabilities come from the int4 logits. `lib`: the int4 copy through int4_linear.c."""
        if self.lm_screen is None or h.shape[0] >= qweights.DENSE_FROM_ROWS:
            return self.lm_head(h).float()
        if lib is None:
            logits = self.lm_screen(h).float()
        else:
            logits = self.lm_screen.native(lib, h, torch.empty(h.shape[0], self.lm_screen.out_features),
                                           torch.get_num_threads())
        top = logits.topk(SCREEN_TOP, dim=-1).indices
        return logits.scatter_(1, top, self.lm_head.rows(h, top))


def _faster_kernel(lib: ctypes.CDLL, weight: qweights.Int4) -> str:
    """"c" or "torch": DISTILL_INT4_KERNEL, else the int4 kernel that applied `weight` faster on this CPU to
    one row and to three (one chat, the three panes), best of KERNEL_PROBE_CALLS alternated calls each, on
    the step's thread count. Measured rather than assumed from the CPU's name: ours was ~2-3x faster than
    torch's with torch capped to AVX2 and up to ~2x slower than its AVX512 code (docs/bench/backend.md).
    Logged once."""
    forced = config.INT4_KERNEL.get()
    if forced != "auto":
        return forced
    inp, out, threads = weight.blocks.shape[1] * qweights.INT4_GROUP, weight.out_features, torch.get_num_threads()
    seconds = {"c": 0.0, "torch": 0.0}
    sample = torch.Generator().manual_seed(0)  # not the global generator: a seeded caller's draws stay its own
    for rows in (1, 3):
        best = time_int4_kernels(lib, weight, torch.randn(rows, inp, generator=sample), threads, KERNEL_PROBE_CALLS)
        for kernel in seconds:
            seconds[kernel] += best[kernel]
    choice = min(seconds, key=seconds.__getitem__)
    log.info("int4 kernel of the decode step: %s (a %dx%d weight for 1 and 3 rows: C %.3f ms, torch %.3f ms)",
             choice, out, inp, seconds["c"] * 1e3, seconds["torch"] * 1e3)
    ratio = max(seconds.values()) / max(min(seconds.values()), 1e-9)
    kernel, other = ("our C kernel (int16 activations)", "torch’s") if choice == "c" else ("torch’s kernel", "ours")
    global _kernel_note  # noqa: PLW0603 - a fact of this process's CPU, set by its one measurement
    _kernel_note = (f"int4 weights through {kernel}, measured {ratio:.1f}x faster than {other} on this CPU; "
                    f"{config.INT4_KERNEL.name}=c|torch forces it.")
    return choice


def time_int4_kernels(lib: ctypes.CDLL, weight: qweights.Int4, x: torch.Tensor, threads: int,
                      calls: int) -> dict[str, float]:
    """{"c": s, "torch": s}: the best of `calls` alternated calls of each int4 kernel on the float32 rows x."""
    x_bf16, y = x.to(torch.bfloat16), torch.empty(x.shape[0], weight.out_features)
    best = {"c": float("inf"), "torch": float("inf")}
    for _ in range(calls):
        start = time.perf_counter()
        weight.native(lib, x, y, threads)
        middle = time.perf_counter()
        weight.kernel(x_bf16)
        end = time.perf_counter()
        best["c"], best["torch"] = min(best["c"], middle - start), min(best["torch"], end - middle)
    return best


def int4_kernel_note() -> str | None:
    """The decode kernel chosen in this process, in words (None before the local model has decoded or loaded)."""
    return _kernel_note


def _prefill_chunks(parts: list[tuple[FastLlama, list[Segment]]]) -> list[list[tuple[FastLlama, list[Segment]]]]:
    """`parts` cut, in order, into passes of at most PREFILL_ROWS rows (a longer prompt is a pass alone)."""
    chunks: list[list[tuple[FastLlama, list[Segment]]]] = [[]]
    rows = 0
    for model, group in parts:
        for segment in group:
            if chunks[-1] and rows + len(segment[0]) > PREFILL_ROWS:
                chunks.append([])
                rows = 0
            if not chunks[-1] or chunks[-1][-1][0] is not model:
                chunks[-1].append((model, []))
            chunks[-1][-1][1].append(segment)
            rows += len(segment[0])
    return chunks


def attend_new_token(qkv: torch.Tensor, spans: list[torch.Tensor], layer: int, kv_heads: int,
                     head_dim: int) -> torch.Tensor:
    """Single-token attention of layer `layer` for each sequence of a decode step: [sequences, q width].

    `qkv`: the step's roped fused projections [sequences, q | k | v]; `spans`: per sequence its cache
    [layers, 2, kv_heads, length + 1, head_dim] with the new position last, where the new key and value
    are written. The query heads of each kv head are SDPA's "query length" (no GQA expansion, no mask),
    and the inputs are 4-D: with 3-D ones SDPA took its unfused math path (~0.1 ms per call under the
    profiler, ten ops: softmax, masks, two bmm) instead of the fused CPU kernel (~2x faster per call)."""
    total, width = qkv.shape[0], qkv.shape[1] - 2 * kv_heads * head_dim
    new_kv = qkv[:, width:].view(total, 2, kv_heads, 1, head_dim)
    outputs = []
    for row, span in enumerate(spans):
        kv = span[layer]
        kv[:, :, -1:] = new_kv[row]
        query = qkv[row, :width].view(1, kv_heads, width // (kv_heads * head_dim), head_dim)
        outputs.append(F.scaled_dot_product_attention(query, kv[0:1], kv[1:2]).view(1, width))
    return torch.cat(outputs) if total > 1 else outputs[0]


def sample(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None) -> int:
    """One token id from a [vocab] float32 logits row: greedy at temperature 0, else nucleus sampling.

    Sampling by one uniform draw against the cumulative distribution: `torch.multinomial` over the
    49,152-token vocabulary drew a random number per token and took ~1 ms, and sorting the whole
    vocabulary for top_p several ms, per generated token. The nucleus is looked for among the top 64
    tokens first (where it almost always ends), then more, then the whole vocabulary: the same tokens
    as a full sort would keep."""
    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p >= 1.0:
        return _draw(probs, None, generator)
    vocab = probs.numel()
    for k in (64, 2048, vocab):
        values, order = torch.topk(probs, min(k, vocab))
        keep = values.cumsum(0) - values < top_p  # tokens until the cumulative probability reaches top_p
        if not keep[-1] or k >= vocab:
            break
    keep[0] = True
    return _draw(values[keep], order[keep], generator)


def _draw(probs: torch.Tensor, ids: torch.Tensor | None, generator: torch.Generator | None) -> int:
    """An index drawn with probability proportional to `probs` (mapped through `ids` when given)."""
    cdf = probs.cumsum(0)
    point = torch.rand(1, generator=generator) * cdf[-1]
    index = min(int(torch.searchsorted(cdf, point, right=True)), probs.numel() - 1)
    return index if ids is None else int(ids[index])
