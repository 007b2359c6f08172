"""Weight formats of the fast decoder's linear layers, and LoRA adapters applied without merging.

Decoding one token reads every weight once, so a step's time is mostly the matmul kernels streaming
135M weights from memory. Measured on one core (docs/bench/backend.md): torch's weight-only int4 kernel
(`_weight_int4pack_mm_for_cpu`, groups of 32 along the input, bf16 activations) took ~12 ms for all the
weights of a token against ~25 ms for the int8 kernel, natively and ~1.4x faster with torch/oneDNN
capped to AVX2. Both kernels are ATen's own vectorised code: bf16 activations are converted, not
multiplied in emulated bf16.

A fine-tuned model is the base's (quantized) weights plus its LoRA adapter kept apart in float32:
y = W x + B (A x). Merging the adapter into the weights first and rounding the sum to 4 bits would
wash out the fine-tune's small deltas; kept apart they are applied exactly, and serving a fine-tuned
model needs no merge or conversion, only reading the adapter file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

INT4_GROUP = 32  # input columns per int4 scale/zero: 32 and 64 ran equally fast; 32 rounds finer
# From this many rows (tokens) in one call, an int8 weight is applied through its dequantized dense copy.
# torch's int8 kernel does one matvec per row, so its time grows with the rows, while a dense matmul's
# barely does: measured on one core (AVX512, docs/bench/demo.md), a 3072x576 weight took 0.18 ms (int8)
# vs 0.31 (bf16) for 1 row, 0.25 vs 0.31 for 4, 1.33 vs 0.56 for 18 and 2.59 vs 0.69 for 36; the lm_head
# (49152x576) 29 vs 12 ms for 18 rows. Many rows = a prompt's prefill or many streams decoded together
# (the demo's benchmark: 36 answers at once). torch's int4 kernel too: 3072x576 took 0.15 ms for 1 row,
# 1.84 for 18, 3.88 for 36, against 0.82 / 0.91 dense (load ~11).
DENSE_FROM_ROWS = 8
# An int4 weight's dense copy is made by unpacking torch's packing (~0.2 s per 3072x576 weight under
# load, seconds for the model): only from this many rows in one call (the prefill of several prompts
# together), never for one chat's prompt, so a first chat does not pay for it. Once made, it serves
# every call from DENSE_FROM_ROWS rows.
INT4_DENSE_FROM_ROWS = 256


@functools.cache
def dense_dtype() -> torch.dtype:
    """bf16 where the CPU multiplies it natively, float32 elsewhere (pipeline/local/precision.py)."""
    from pipeline.local import precision

    return precision.choose().compute_dtype


@dataclass
class Int8:
    q: torch.Tensor  # [out, in] int8
    scale: torch.Tensor  # [out] bf16
    # q * scale in dense_dtype(), made at the first many-row call: the same weights, and 2 (bf16) or 4
    # bytes per weight more memory, shared with every fine-tuned model built on these weights.
    dense: torch.Tensor | None = field(default=None, repr=False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] >= DENSE_FROM_ROWS:
            if self.dense is None:
                self.dense = (self.q.to(torch.float32) * self.scale.float()[:, None]).to(dense_dtype())
            return F.linear(x.to(self.dense.dtype), self.dense)
        return self.kernel(x.to(torch.bfloat16))

    def kernel(self, x: torch.Tensor) -> torch.Tensor:
        """bf16 x [rows, in] through torch's int8 kernel (what a call of fewer than DENSE_FROM_ROWS rows runs)."""
        return torch._weight_int8pack_mm(x, self.q, self.scale)

    def makes_dense_copy(self, rows: int) -> bool:
        return self.dense is None and rows >= DENSE_FROM_ROWS

    def rows(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """float32 [rows, k]: output `ids[r]` of row r of x, by the same kernel as a full call (so the same
        values), reading only those weight rows."""
        n, k = ids.shape
        flat = ids.reshape(-1)
        out = torch._weight_int8pack_mm(x.to(torch.bfloat16), self.q[flat], self.scale[flat]).view(n, n, k)
        return (out[0] if n == 1 else out[torch.arange(n), torch.arange(n)]).float()

    @property
    def out_features(self) -> int:
        return self.q.shape[0]


@dataclass
class Int4:
    packed: torch.Tensor  # torch's CPU int4 packing of [out, in]
    scales_zeros: torch.Tensor  # [in / group, out, 2] bf16: w = (q - 8) * scale + zero
    group: int
    out_features: int
    # The same codes, scales and zeros as 20-byte blocks per group of 32 inputs, read by the C kernel of a
    # decode step (int4_linear.c); None in a conversion made before it (the engine then converts again).
    blocks: torch.Tensor | None = field(default=None, repr=False)
    # The dequantized weights in dense_dtype() (see INT4_DENSE_FROM_ROWS); False: torch's packing was not
    # the one _unpack_int4 reads (another CPU kind), the kernel serves every call.
    dense: torch.Tensor | bool | None = field(default=None, repr=False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.shape[0]
        if self.dense is None and rows >= INT4_DENSE_FROM_ROWS:
            self.dense = self._dequantized()
        if rows >= DENSE_FROM_ROWS and isinstance(self.dense, torch.Tensor):
            return F.linear(x.to(self.dense.dtype), self.dense)
        return self.kernel(x.to(torch.bfloat16))

    def kernel(self, x: torch.Tensor) -> torch.Tensor:
        """bf16 x [rows, in] through torch's int4 kernel (what a call of fewer than DENSE_FROM_ROWS rows runs)."""
        return torch._weight_int4pack_mm_for_cpu(x, self.packed, self.group, self.scales_zeros)

    def native(self, lib, x: torch.Tensor, out: torch.Tensor, threads: int) -> torch.Tensor:  # noqa: ANN001 (ctypes)
        """float32 x [rows, in] (rows < 8) through int4_linear.c's kernel (`lib`: native.library()) into the
        float32 `out` [rows, out_features], on `threads` threads; returns `out`."""
        lib.int4_linear(self.blocks.data_ptr(), self.out_features, x.shape[1], x.data_ptr(), x.shape[0],
                        out.data_ptr(), threads)
        return out

    def makes_dense_copy(self, rows: int) -> bool:
        return self.dense is None and rows >= INT4_DENSE_FROM_ROWS

    def _dequantized(self) -> torch.Tensor | bool:
        weights = self.weights(torch.float32)
        return False if weights is None else weights.to(dense_dtype())

    def weights(self, dtype: torch.dtype) -> torch.Tensor | None:
        """[out, in] the weights as torch's packing, scales and zeros hold them, computed in `dtype` (float64:
        exactly), or None where the packing is not one _unpack_int4 reads."""
        codes = _unpack_int4(self.packed, self.out_features)
        if codes is None:
            return None
        sz = self.scales_zeros.to(dtype)  # [in / group, out, 2]
        scale = sz[..., 0].t().repeat_interleave(self.group, dim=1)
        zero = sz[..., 1].t().repeat_interleave(self.group, dim=1)
        return (codes.to(dtype) - 8) * scale + zero


def _unpack_int4(packed: torch.Tensor, out: int) -> torch.Tensor | None:
    """The [out, in] codes of torch's CPU int4 packing, or None where it is neither layout read here:
    blocks of 64 rows (AVX512 kernels) or 32 (AVX2), per input column half a block of bytes, byte j =
    row j (low nibble) | row j + half (high). Checked by packing the result again, so another layout
    is never misread."""
    inp = packed.shape[-1] * 2
    if packed.dim() != 2 or packed.dtype != torch.uint8 or packed.numel() * 2 != out * inp:
        return None
    for block in (64, 32):
        if out % block:
            continue
        halves = packed.view(out // block, inp, block // 2)
        codes = torch.cat([halves & 0xF, halves >> 4], dim=2).transpose(1, 2).reshape(out, inp).to(torch.int32)
        if torch.equal(torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1), packed):
            return codes
    return None


@dataclass
class Dense:
    w: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(self.w.dtype), self.w)

    def makes_dense_copy(self, rows: int) -> bool:  # noqa: ARG002 (the other formats' signature)
        return False

    @property
    def out_features(self) -> int:
        return self.w.shape[0]


Weight = Int8 | Int4 | Dense


def quantize(name: str, t: torch.Tensor, kind: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The stored tensors of one [out, in] weight in format `kind` (int4, int8 or dense in `dtype`)."""
    t = t.detach().float()
    if kind == "int4" and int4_fits(t):
        packed, scales_zeros, blocks = _int4(t, INT4_GROUP)
        return {f"{name}.q4": packed, f"{name}.sz": scales_zeros, f"{name}.b4": blocks}
    if kind in ("int4", "int8"):  # one scale per output row: half the memory traffic of bf16
        scale = t.abs().amax(dim=1).clamp(min=1e-8) / 127
        return {f"{name}.q": (t / scale[:, None]).round().clamp(-127, 127).to(torch.int8).contiguous(),
                f"{name}.scale": scale.to(torch.bfloat16)}
    return {name: t.to(dtype).contiguous()}


def load(name: str, tensors: dict[str, torch.Tensor]) -> Int8 | Int4 | Dense:
    if f"{name}.q4" in tensors:
        sz = tensors[f"{name}.sz"]
        return Int4(tensors[f"{name}.q4"], sz, tensors[f"{name}.q4"].shape[1] * 2 // sz.shape[0], sz.shape[1],
                    tensors.get(f"{name}.b4"))
    if f"{name}.q" in tensors:
        return Int8(tensors[f"{name}.q"], tensors[f"{name}.scale"])
    return Dense(tensors[name])


def int4_fits(t: torch.Tensor) -> bool:
    return t.shape[1] % INT4_GROUP == 0 and t.shape[0] % 16 == 0


def _int4(t: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric 4-bit rounding per group of `group` inputs (min..max onto 0..15): torch's CPU packing with
    its scales and zeros, and the same as the C kernel's blocks (`_blocks`).

    The codes are rounded against the bf16-rounded scale and zero the kernel will use, so the stored
    scale/zero rounding does not add to the 4-bit error."""
    out, inp = t.shape
    g = t.view(out, inp // group, group)
    low, high = g.amin(-1, keepdim=True), g.amax(-1, keepdim=True)
    scale = ((high - low) / 15).clamp(min=1e-8).to(torch.bfloat16).float()
    zero = (low + 8 * scale).to(torch.bfloat16).float()
    codes = ((g - zero) / scale + 8).round().clamp(0, 15).to(torch.int32).view(out, inp)
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1)
    scales_zeros = torch.stack([scale.view(out, -1), zero.view(out, -1)], dim=-1).to(torch.bfloat16)
    return packed.contiguous(), scales_zeros.transpose(0, 1).contiguous(), _blocks(codes, scales_zeros)


def _blocks(codes: torch.Tensor, scales_zeros: torch.Tensor) -> torch.Tensor:
    """[out, in / 32, 20] uint8: per group of 32 inputs its bf16 scale and zero (little-endian, as the C
    struct reads them on x86 and ARM), then byte j = code j | code j + 16 << 4."""
    out, inp = codes.shape
    g = codes.view(out, inp // INT4_GROUP, INT4_GROUP)
    packed = (g[..., :16] | (g[..., 16:] << 4)).to(torch.uint8)
    return torch.cat([scales_zeros.contiguous().view(torch.uint8), packed], dim=-1).contiguous()


class UnsupportedAdapter(ValueError):
    """An adapter this module cannot apply unmerged (DoRA, extra trained modules, ...): merge it instead."""


LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def read_lora(adapter_dir) -> dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]]:
    """{(layer, projection): (A [rank, in], B [out, rank] with the adapter's scaling folded in)}, float32.

    Plain LoRA only (peft's file layout); anything else raises UnsupportedAdapter."""
    import json
    import math
    import re
    from pathlib import Path

    from safetensors.torch import load_file

    folder = Path(adapter_dir)
    cfg = json.loads((folder / "adapter_config.json").read_text())
    plain = (cfg.get("peft_type") == "LORA" and not cfg.get("use_dora") and not cfg.get("modules_to_save")
             and not cfg.get("rank_pattern") and not cfg.get("alpha_pattern") and cfg.get("bias", "none") == "none"
             and not cfg.get("lora_bias") and not cfg.get("trainable_token_indices")
             and not cfg.get("layer_replication") and not cfg.get("fan_in_fan_out"))
    if not plain:
        raise UnsupportedAdapter("not a plain LoRA adapter")
    rank, alpha = cfg["r"], cfg["lora_alpha"]
    scaling = alpha / math.sqrt(rank) if cfg.get("use_rslora") else alpha / rank
    pattern = re.compile(r".*\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])\.weight")
    found: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for key, tensor in load_file(str(folder / "adapter_model.safetensors")).items():
        match = pattern.fullmatch(key)
        if match is None or match.group(2) not in LINEAR_MODULES:
            raise UnsupportedAdapter(f"adapter weight {key} is not a LoRA of a decoder projection")
        found.setdefault((int(match.group(1)), match.group(2)), {})[match.group(3)] = tensor.float()
    if any(set(pair) != {"A", "B"} for pair in found.values()):
        raise UnsupportedAdapter("an adapter projection lacks its A or B matrix")
    return {key: (pair["A"], pair["B"] * scaling) for key, pair in found.items()}
