"""Driving the local engine directly in tests: requests submitted together, answers awaited; a tiny model
whose decoding mistakes show."""

from __future__ import annotations

import asyncio
from typing import Any


def generate(engine: Any, requests: list[dict[str, Any]]) -> list[list[int]]:
    """Submit one GenRequest per dict of its fields, all at once, and wait until each is done; the tokens
    each generated, in order."""
    from pipeline.local.engine import GenRequest

    async def run() -> list[list[int]]:
        made = [GenRequest(**fields, loop=asyncio.get_running_loop(), out=asyncio.Queue()) for fields in requests]
        for request in made:
            engine.submit(request)
        for request in made:
            while (await asyncio.wait_for(request.out.get(), timeout=120))[0] not in ("done", "error"):
                pass
        return [r.generated for r in made]

    return asyncio.run(run())


def peaked(model: Any) -> Any:
    """A copy of a (tiny, random) transformers Llama with larger q/k weights. Random init gives near-uniform
    attention, under which a RoPE or cache mistake barely shows in the answers; peaked attention makes it
    change the tokens."""
    import copy

    import torch

    model = copy.deepcopy(model)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.q_proj.weight.mul_(12)
            layer.self_attn.k_proj.weight.mul_(12)
    return model
