"""A lean Llama forward pass for decoding on CPU, fed by a transformers model's weights.

Why not `model.generate`: for a 135M model on two cores, most of generate's time is Python overhead
(mask building, cache bookkeeping, logits processors) and fp32 weight traffic, ~18 tokens/s here.
This module keeps the linear weights in int8 (or bfloat16 / float32), fuses q/k/v and gate/up into one
matmul each, and decodes several sequences in one pass: the linear layers (where the weights are read
from memory) run once for the whole batch, and only attention runs per sequence, each against its own
KV cache. So concurrent streams share the cost of reading the weights.

A decode step is ~30 layers x a handful of small ops, so each op's dispatch cost counts as much as its
arithmetic. The layout is chosen to keep the op count low:
  * q/k weight rows are stored pair-interleaved (q0, q32, q1, q33, ...) so RoPE is one complex
    multiply, whose result is copied back in rotate-half order (q.k then sums in transformers' order,
    and the answers stay bit-identical to the previous decoder's);
  * roped k and v end up side by side in the fused qkv output, so one copy appends both to the cache;
  * a single new token's attention is one `scaled_dot_product_attention` call with the query heads
    of each key/value head as its "query length", with no mask (no GQA expansion, no math fallback);
  * residual adds are in place, norms are `F.rms_norm`.
Numerics follow transformers' LlamaForCausalLM (RMSNorm and the residual stream in float32, GQA);
the tests check the logits against the transformers model, and that a batch gives each sequence what
it gets alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F


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


@dataclass
class _Int8:
    q: torch.Tensor
    scale: torch.Tensor


@dataclass
class _Layer:
    ln1: torch.Tensor
    wqkv: torch.Tensor | _Int8
    wo: torch.Tensor | _Int8
    ln2: torch.Tensor
    wgu: torch.Tensor | _Int8
    wdown: torch.Tensor | _Int8


def _interleave(weight: torch.Tensor, heads: int, head_dim: int) -> torch.Tensor:
    """Rows of a q or k projection reordered per head from rotate-half to pair-interleaved layout."""
    half = head_dim // 2
    order = torch.stack([torch.arange(half), torch.arange(half) + half], dim=1).flatten()
    return weight.view(heads, head_dim, -1)[:, order].reshape(heads * head_dim, -1)


class FastLlama:
    """Decoding-only Llama over weights copied out of a (possibly LoRA-merged) transformers model."""

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype = torch.bfloat16, int8: bool = False):
        cfg = model.config
        rope = getattr(cfg, "rope_parameters", None) or {}
        if rope.get("rope_type", "default") != "default":
            raise ValueError(f"FastLlama supports default RoPE only, not {rope.get('rope_type')}")
        heads, kv_heads = cfg.num_attention_heads, cfg.num_key_value_heads
        hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        meta = {"heads": heads, "kv_heads": kv_heads, "head_dim": hd, "eps": cfg.rms_norm_eps,
                "max_positions": cfg.max_position_embeddings, "hidden": cfg.hidden_size,
                "theta": rope.get("rope_theta") or getattr(cfg, "rope_theta", 10000.0),
                "dtype": str(dtype).removeprefix("torch."), "int8": int8}

        def w(name: str, t: torch.Tensor) -> dict[str, torch.Tensor]:
            t = t.detach().float()
            if int8:  # weight-only int8 with one scale per output row: half the memory traffic of bf16
                scale = t.abs().amax(dim=1).clamp(min=1e-8) / 127
                return {f"{name}.q": (t / scale[:, None]).round().clamp(-127, 127).to(torch.int8).contiguous(),
                        f"{name}.scale": scale.to(torch.bfloat16)}
            return {name: t.to(dtype).contiguous()}

        inner = model.model
        act = torch.bfloat16 if int8 else dtype
        tensors = {"embed": inner.embed_tokens.weight.detach().to(act).contiguous(),
                   "norm": inner.norm.weight.detach().float().contiguous(), **w("lm_head", model.lm_head.weight)}
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
        self.int8, self.dtype = meta["int8"], getattr(torch, meta["dtype"])

        def w(name: str) -> torch.Tensor | _Int8:
            return _Int8(tensors[f"{name}.q"], tensors[f"{name}.scale"]) if self.int8 else tensors[name]

        self.embed, self.norm, self.lm_head = tensors["embed"], tensors["norm"], w("lm_head")
        count = sum(1 for name in tensors if name.endswith(".ln1"))
        self.layers = [_Layer(ln1=tensors[f"{i}.ln1"], wqkv=w(f"{i}.wqkv"), wo=w(f"{i}.wo"), ln2=tensors[f"{i}.ln2"],
                              wgu=w(f"{i}.wgu"), wdown=w(f"{i}.wdown")) for i in range(count)]
        down = self.layers[0].wdown
        self.intermediate = (down.q if self.int8 else down).shape[1]
        hd = self.head_dim
        inv_freq = 1.0 / (meta["theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        freqs = torch.outer(torch.arange(self.max_positions, dtype=torch.float32), inv_freq)
        self.rotation = torch.complex(freqs.cos(), freqs.sin())  # [positions, head_dim / 2]

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
        self._setup(meta, load_file(str(path)))
        return self

    def new_cache(self) -> KVCache:
        return KVCache(len(self.layers), self.kv_heads, self.head_dim, torch.float32)

    def _linear(self, x: torch.Tensor, weight: torch.Tensor | _Int8) -> torch.Tensor:
        """x @ weight.T in the activation dtype (bf16 for int8 weights); callers widen where needed."""
        if self.int8:
            return torch._weight_int8pack_mm(x.to(torch.bfloat16), weight.q, weight.scale)
        return F.linear(x.to(self.dtype), weight)

    @torch.inference_mode()
    def forward(self, segments: list[tuple[list[int], KVCache]]) -> torch.Tensor:
        """Append each segment's tokens to its cache; float32 logits of each segment's last token."""
        sizes = [len(tokens) for tokens, _ in segments]
        positions = [p for (_, c), n in zip(segments, sizes, strict=True) for p in range(c.length, c.length + n)]
        if max(positions) >= self.max_positions:
            raise ValueError(f"The sequence is longer than the model's {self.max_positions}-token context.")
        for (_, cache), n in zip(segments, sizes, strict=True):
            cache.reserve(n)
        total, hd, heads, kv_heads = len(positions), self.head_dim, self.heads, self.kv_heads
        q_width, qk_width = heads * hd, (heads + kv_heads) * hd
        group = heads // kv_heads
        rotation = self.rotation[positions].unsqueeze(1)  # [total, 1, head_dim / 2]
        x = self.embed[[t for tokens, _ in segments for t in tokens]].float()
        shape = (self.hidden,)
        decode = max(sizes) == 1
        for index, layer in enumerate(self.layers):
            qkv = self._linear(F.rms_norm(x, shape, layer.ln1, self.eps), layer.wqkv).float()
            # RoPE: the weights put each pair (x_j, x_j+half) side by side, so rotating is one complex multiply;
            # the result goes back in rotate-half order, so q.k sums in the same order as transformers.
            qk = qkv[:, :qk_width]
            turned = torch.view_as_real(torch.view_as_complex(qk.view(total, heads + kv_heads, hd // 2, 2)) * rotation)
            qk.view(total, heads + kv_heads, 2, hd // 2).copy_(turned.transpose(-1, -2))
            kv = qkv[:, q_width:].view(total, 2, kv_heads, hd)
            outputs, start = [], 0
            for (_, cache), n in zip(segments, sizes, strict=True):
                past, stop = cache.length, start + n
                cache.kv[index, :, :, past: past + n] = kv[start:stop].permute(1, 2, 0, 3)
                keys, values = cache.kv[index, 0, :, : past + n], cache.kv[index, 1, :, : past + n]
                if decode:  # one token: its `group` query heads per kv head are the "query length"
                    out = F.scaled_dot_product_attention(qkv[start, :q_width].view(kv_heads, group, hd), keys, values)
                    outputs.append(out.view(1, q_width))
                else:
                    query = qkv[start:stop, :q_width].view(n, heads, hd).transpose(0, 1)
                    if past == 0:
                        out = F.scaled_dot_product_attention(query, keys, values, is_causal=True, enable_gqa=True)
                    else:  # a chunk appended after earlier tokens: each new token sees the past and itself
                        allowed = torch.arange(past + n).unsqueeze(0) <= (torch.arange(n) + past).unsqueeze(1)
                        out = F.scaled_dot_product_attention(query, keys, values, attn_mask=allowed,
                                                             enable_gqa=True)
                    outputs.append(out.transpose(0, 1).reshape(n, q_width))
                start = stop
            x.add_(self._linear(torch.cat(outputs) if len(outputs) > 1 else outputs[0], layer.wo))
            gate_up = self._linear(F.rms_norm(x, shape, layer.ln2, self.eps), layer.wgu)
            x.add_(self._linear(F.silu(gate_up[:, : self.intermediate].float()) * gate_up[:, self.intermediate:],
                                layer.wdown))
        for (_, cache), n in zip(segments, sizes, strict=True):
            cache.length += n
        if not decode:
            x = x[torch.tensor(sizes).cumsum(0) - 1]
        return self._linear(F.rms_norm(x, shape, self.norm, self.eps), self.lm_head).float()


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
