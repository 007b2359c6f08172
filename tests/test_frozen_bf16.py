"""Where bf16 is native the fine-tune runs the frozen weights' matmuls in bf16 and everything else in
float32 (pipeline/local/frozen_bf16.py): the LoRA weights, their gradients, the residual stream and the
loss stay float32, and the result tracks a float32 fine-tune."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from pipeline.local import frozen_bf16
from tests.test_precision import _train_tiny


@pytest.fixture(scope="module")
def lora_model():
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from pipeline.local.weights import tiny_model_dir

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir(), dtype=torch.float32)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM", init_lora_weights=False)
    return get_peft_model(model, lora)


def _loss_and_grads(model, ids):
    model.zero_grad()
    out = model(input_ids=ids, use_cache=False)
    loss = F.cross_entropy(out.logits[0, :-1].float(), ids[0, 1:])
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return out.logits, loss, grads


def test_frozen_linears_compute_in_bf16_and_lora_in_fp32(lora_model):
    exact = lora_model
    mixed = copy.deepcopy(lora_model)
    seen: set = set()
    cast = frozen_bf16.cast_frozen_linears(mixed)
    layers = exact.get_base_model().config.num_hidden_layers
    assert cast == 7 * layers  # q, k, v, o, gate, up, down of every block

    from peft.tuners.lora import LoraLayer

    for module in mixed.modules():
        if isinstance(module, LoraLayer):
            assert module.base_layer.weight.dtype == torch.bfloat16 and not module.base_layer.weight.requires_grad
            module.base_layer.register_forward_hook(lambda _m, args, _o: seen.add(args[0].dtype), prepend=True)
    trained = {p.dtype for p in mixed.parameters() if p.requires_grad}
    assert trained == {torch.float32}

    ids = torch.randint(0, exact.get_base_model().config.vocab_size, (1, 24), generator=torch.Generator().manual_seed(1))
    logits, loss, grads = _loss_and_grads(exact, ids)
    m_logits, m_loss, m_grads = _loss_and_grads(mixed, ids)
    assert seen == {torch.bfloat16}  # the frozen matmuls' inputs really were bf16
    assert m_logits.dtype == torch.float32 and m_loss.dtype == torch.float32
    assert m_loss.item() == pytest.approx(loss.item(), rel=2e-2)
    assert grads.keys() == m_grads.keys()
    for name, grad in grads.items():
        assert m_grads[name].dtype == torch.float32
        # bf16 rounds to ~3 significant digits: each gradient points the same way and has the same size.
        assert F.cosine_similarity(grad.flatten(), m_grads[name].flatten(), dim=0) > 0.98, name
        assert m_grads[name].norm().item() == pytest.approx(grad.norm().item(), rel=5e-2), name


def test_a_trained_base_weight_is_left_in_fp32(lora_model):
    model = copy.deepcopy(lora_model)
    base = model.get_base_model().model.layers[0].self_attn.q_proj.base_layer
    base.weight.requires_grad_(True)
    assert frozen_bf16.cast_frozen_linears(model) == 7 * model.get_base_model().config.num_hidden_layers - 1
    assert base.weight.dtype == torch.float32


def test_bf16_head_gives_fp32_logits_close_to_the_exact_ones():
    head = torch.nn.Linear(64, 1000, bias=False)
    hidden = torch.randn(5, 64)
    logits = frozen_bf16.Bf16Head(head)(hidden)
    assert logits.dtype == torch.float32
    exact = head(hidden)
    assert torch.allclose(logits, exact, atol=0.02 * exact.abs().max().item())
    assert (logits.argmax(-1) == exact.argmax(-1)).float().mean() >= 0.8


def test_the_trainer_with_bf16_matmuls_tracks_fp32(tmp_path):
    """The real trainer process on the tiny model, precision forced each way: same steps, the frozen weights
    stored in bf16 only in the bf16 run, and step losses within bf16 rounding of the fp32 run's."""
    mixed = _train_tiny(tmp_path / "bf16", {"DISTILL_PRECISION": "bf16"}, epochs=2, total_steps=4)
    exact = _train_tiny(tmp_path / "fp32", {"DISTILL_PRECISION": "fp32"}, epochs=2, total_steps=4)
    assert (mixed["precision"], mixed["compute_dtype"], mixed["weight_dtypes"]) == ("bf16", "bfloat16", ["bfloat16", "float32"])
    assert (exact["precision"], exact["compute_dtype"], exact["weight_dtypes"]) == ("fp32", "float32", ["float32"])
    assert len(mixed["losses"]) == len(exact["losses"]) == 4
    assert mixed["losses"] == pytest.approx(exact["losses"], rel=3e-2)
    assert mixed["losses"][-1] < mixed["losses"][0]  # it learns
