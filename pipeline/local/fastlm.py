"""A lean Llama forward pass for decoding on CPU, fed by a transformers model's weights.

Why not `model.generate`: for a 135M model on two cores, most of generate's time is Python overhead
(mask building, cache bookkeeping, logits processors) and fp32 weight traffic, ~18 tokens/s here.
This module keeps the weights in bfloat16 (the CPU has AVX512-BF16), fuses q/k/v and gate/up into one
matmul each, and decodes several sequences in one pass: the linear layers (where the weights are read
from memory) run once for the whole batch, and only attention runs per sequence, each against its own
KV cache. So concurrent streams share the cost of reading the weights.

Numerics follow transformers' LlamaForCausalLM (RMSNorm in float32, rotate-half RoPE, GQA); a test
checks the logits against the transformers model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


class KVCache:
    """Keys and values of one sequence for every layer; grows by doubling."""

    def __init__(self, layers: int, kv_heads: int, head_dim: int, dtype: torch.dtype, capacity: int = 256):
        self.k = torch.empty(layers, kv_heads, capacity, head_dim, dtype=dtype)
        self.v = torch.empty_like(self.k)
        self.length = 0

    def reserve(self, extra: int) -> None:
        need = self.length + extra
        capacity = self.k.shape[2]
        if need <= capacity:
            return
        capacity = max(need, capacity * 2)
        for name in ("k", "v"):
            old = getattr(self, name)
            new = torch.empty(old.shape[0], old.shape[1], capacity, old.shape[3], dtype=old.dtype)
            new[:, :, : self.length] = old[:, :, : self.length]
            setattr(self, name, new)


@dataclass
class _Layer:
    ln1: torch.Tensor
    wqkv: torch.Tensor
    wo: torch.Tensor
    ln2: torch.Tensor
    wgu: torch.Tensor
    wdown: torch.Tensor


class FastLlama:
    """Decoding-only Llama over weights copied out of a (possibly LoRA-merged) transformers model."""

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype = torch.bfloat16):
        cfg = model.config
        self.dtype = dtype
        self.heads = cfg.num_attention_heads
        self.kv_heads = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads
        self.eps = cfg.rms_norm_eps
        self.max_positions = cfg.max_position_embeddings
        rope = getattr(cfg, "rope_parameters", None) or {}
        theta = rope.get("rope_theta") or getattr(cfg, "rope_theta", 10000.0)
        if rope.get("rope_type", "default") != "default":
            raise ValueError(f"FastLlama supports default RoPE only, not {rope.get('rope_type')}")

        def w(t: torch.Tensor) -> torch.Tensor:
            return t.detach().to(dtype).contiguous()

        inner = model.model
        self.embed = w(inner.embed_tokens.weight)
        head = model.lm_head.weight
        self.lm_head = self.embed if head.data_ptr() == inner.embed_tokens.weight.data_ptr() else w(head)
        self.norm = inner.norm.weight.detach().float()
        self.layers = []
        for layer in inner.layers:
            att, mlp = layer.self_attn, layer.mlp
            self.layers.append(_Layer(
                ln1=layer.input_layernorm.weight.detach().float(),
                wqkv=w(torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight])),
                wo=w(att.o_proj.weight),
                ln2=layer.post_attention_layernorm.weight.detach().float(),
                wgu=w(torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])),
                wdown=w(mlp.down_proj.weight),
            ))
        inv_freq = 1.0 / (theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim))
        freqs = torch.outer(torch.arange(self.max_positions, dtype=torch.float32), inv_freq)
        emb = torch.cat([freqs, freqs], dim=-1)
        self.cos, self.sin = emb.cos(), emb.sin()

    def new_cache(self) -> KVCache:
        return KVCache(len(self.layers), self.kv_heads, self.head_dim, torch.float32)

    def _linear(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(weight.dtype), weight).float()

    def _rms(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * h

    @staticmethod
    def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    @torch.inference_mode()
    def forward(self, segments: list[tuple[list[int], KVCache]]) -> torch.Tensor:
        """Append each segment's tokens to its cache; float32 logits of each segment's last token."""
        sizes = [len(tokens) for tokens, _ in segments]
        ids = torch.tensor([t for tokens, _ in segments for t in tokens], dtype=torch.long)
        positions = torch.cat([torch.arange(c.length, c.length + n) for (_, c), n in zip(segments, sizes, strict=True)])
        if int(positions.max()) >= self.max_positions:
            raise ValueError(f"The sequence is longer than the model's {self.max_positions}-token context.")
        for (_, cache), n in zip(segments, sizes, strict=True):
            cache.reserve(n)
        cos, sin = self.cos[positions].unsqueeze(1), self.sin[positions].unsqueeze(1)
        x = self.embed[ids].float()
        total, hd = ids.shape[0], self.head_dim
        q_width, kv_width = self.heads * hd, self.kv_heads * hd
        for index, layer in enumerate(self.layers):
            qkv = self._linear(self._rms(x, layer.ln1), layer.wqkv)
            q = self._rope(qkv[:, :q_width].view(total, self.heads, hd), cos, sin)
            k = self._rope(qkv[:, q_width: q_width + kv_width].view(total, self.kv_heads, hd), cos, sin)
            v = qkv[:, q_width + kv_width:].view(total, self.kv_heads, hd)
            outputs, start = [], 0
            for (_, cache), n in zip(segments, sizes, strict=True):
                past, stop = cache.length, start + n
                cache.k[index, :, past: past + n] = k[start:stop].transpose(0, 1)
                cache.v[index, :, past: past + n] = v[start:stop].transpose(0, 1)
                keys, values = cache.k[index, :, : past + n], cache.v[index, :, : past + n]
                query = q[start:stop].transpose(0, 1)
                if n == 1:
                    out = F.scaled_dot_product_attention(query, keys, values, enable_gqa=True)
                elif past == 0:
                    out = F.scaled_dot_product_attention(query, keys, values, is_causal=True, enable_gqa=True)
                else:  # a chunk appended after earlier tokens: each new token sees the past and itself
                    allowed = torch.arange(past + n).unsqueeze(0) <= (torch.arange(n) + past).unsqueeze(1)
                    out = F.scaled_dot_product_attention(query, keys, values, attn_mask=allowed,
                                                         enable_gqa=True)
                outputs.append(out.transpose(0, 1).reshape(n, q_width))
                start = stop
            x = x + self._linear(torch.cat(outputs) if len(outputs) > 1 else outputs[0], layer.wo)
            gate, up = self._linear(self._rms(x, layer.ln2), layer.wgu).chunk(2, dim=-1)
            x = x + self._linear(F.silu(gate) * up, layer.wdown)
        for (_, cache), n in zip(segments, sizes, strict=True):
            cache.length += n
        last = torch.tensor(sizes).cumsum(0) - 1
        hidden = self._rms(x[last], self.norm)
        return self._linear(hidden, self.lm_head)


def sample(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None) -> int:
    """One token id from a [vocab] float32 logits row: greedy at temperature 0, else nucleus sampling."""
    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = sorted_probs.cumsum(0) - sorted_probs < top_p
        keep[0] = True
        sorted_probs = sorted_probs * keep
        choice = torch.multinomial(sorted_probs / sorted_probs.sum(), 1, generator=generator)
        return int(order[choice])
    return int(torch.multinomial(probs, 1, generator=generator))
