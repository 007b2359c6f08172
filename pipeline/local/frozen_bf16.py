"""The frozen weights' matmuls in bf16, everything else of a LoRA fine-tune in float32.

A LoRA fine-tune spends ~77% of a step in the matmuls of the frozen base (forward, and the backward's
input gradients): on a CPU with native bf16 those run ~4x faster in bf16. bf16 autocast gets some of
that, but re-casts each frozen weight in every forward (its cast cache keeps only weights that
require gradients) and moves attention, norms and the LoRA path to bf16 too (the bf16 attention
backward alone ran 3.5x slower than fp32's here). This casts each frozen linear weight to bf16 once,
rounds only its input to bf16 and returns its output in float32, so the residual stream, norms,
attention, the LoRA matrices, the loss and the optimizer stay float32 (docs/bench/recipe.md).

Use it only where bf16 is native (pipeline/local/precision.py decides): emulated, a bf16 matmul is
~50x slower than fp32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _to_bf16(_module, args):
    return (args[0].to(torch.bfloat16), *args[1:])


def _to_fp32(_module, _args, output):
    return output.float()


def cast_frozen_linears(model: torch.nn.Module) -> int:
    """Stores every LoRA layer's frozen base linear in bf16 and wraps its call in casts (input to bf16,
    output back to float32); returns how many. The LoRA matrices, which train, stay float32."""
    from peft.tuners.lora import LoraLayer

    count = 0
    for module in model.modules():
        base = getattr(module, "base_layer", None)
        if not isinstance(module, LoraLayer) or not isinstance(base, torch.nn.Linear):
            continue
        if any(p.requires_grad for p in base.parameters()):
            continue  # a trained base weight keeps its float32 master copy
        base.to(torch.bfloat16)
        base.register_forward_pre_hook(_to_bf16)
        base.register_forward_hook(_to_fp32)
        count += 1
    return count


class Bf16Head:
    """The frozen LM head as a bf16 copy: logits = hidden (rounded to bf16) @ head^T, in float32.

    The head is tied to the input embeddings here, which stay float32 for the embedding lookup, so it is
    a separate copy (49,152 x 576: +57 MB) rather than a cast in place."""

    def __init__(self, head: torch.nn.Linear):
        self.weight = head.weight.detach().to(torch.bfloat16)
        self.bias = None if head.bias is None else head.bias.detach().to(torch.bfloat16)

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden.to(torch.bfloat16), self.weight, self.bias).float()


def use_in(trainer) -> int:
    """Both, on a built (PEFT-wrapped) SFTTrainer: its frozen linears, and its LM head where the trainer
    takes one (pipeline/local/sft_head.py; TRL's own head, a benchmark's choice, stays float32).
    Returns how many linears were cast."""
    count = cast_frozen_linears(trainer.model)
    if hasattr(trainer, "bf16_head"):
        trainer.bf16_head = Bf16Head(trainer.model.get_base_model().get_output_embeddings())
    return count
