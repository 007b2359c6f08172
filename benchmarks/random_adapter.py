"""A fine-tuned model for the decode benchmarks without a fine-tune: a LoRA adapter with random weights."""

from __future__ import annotations

from pathlib import Path


def save_random_adapter(model, folder: Path) -> Path:
    """A LoRA adapter of r=16 on every projection with random (seeded) weights, as a fine-tune leaves
    one, saved into `folder` (`model` itself is not changed)."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(copy.deepcopy(model), lora).save_pretrained(folder)
    return folder
