"""A training step's rows split over worker threads (pipeline/local/row_shards.py, sft_head.py): the
split itself, and that a split step trains exactly what the whole batch trains."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from pipeline.local import row_shards

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _batch(lengths: list[int], width: int) -> dict[str, torch.Tensor]:
    """Right-padded rows of the given lengths; each row's tokens are its index + 1 (padding 0)."""
    mask = torch.tensor([[1] * n + [0] * (width - n) for n in lengths])
    ids = mask * torch.arange(1, len(lengths) + 1).unsqueeze(1)
    return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}


def test_rows_go_to_groups_of_about_equal_tokens_each_trimmed_to_its_longest_row() -> None:
    parts = row_shards.split(_batch([50, 10, 40, 20], width=50), 2)
    assert parts is not None and len(parts) == 2
    rows = sorted(int(r[0]) for part in parts for r in part["input_ids"])
    assert rows == [1, 2, 3, 4]  # every row once
    # Longest first to the lightest group: 50 + 10 against 40 + 20.
    tokens = sorted(int(part["attention_mask"].sum()) for part in parts)
    assert tokens == [60, 60]
    by_first_row = {int(part["input_ids"][0, 0]): part for part in parts}
    assert by_first_row[3]["input_ids"].shape == (2, 40)  # rows 3 and 4: the padding past 40 is gone
    assert by_first_row[1]["input_ids"].shape == (2, 50)
    assert torch.equal(by_first_row[3]["labels"][1, :20], torch.full((20,), 4))


def test_a_batch_it_cannot_split_is_computed_whole() -> None:
    assert row_shards.split(_batch([5], width=5), 2) is None  # one row
    assert row_shards.split(_batch([5, 3], width=5), 1) is None  # one shard asked
    packed = _batch([5, 3], width=5) | {"position_ids": torch.arange(5).unsqueeze(0)}
    assert row_shards.split(packed, 2) is None  # a key of another shape
    three = row_shards.split(_batch([5, 3], width=5), 3)
    assert three is not None and len(three) == 2  # never more groups than rows


def test_workers_run_each_call_on_its_own_thread_with_its_own_thread_count() -> None:
    workers = row_shards.Workers()
    seen = workers.run([lambda: (threading.current_thread().name, torch.get_num_threads())] * 2, threads_each=1)
    assert all(name.startswith("train-rows") and threads == 1 for name, threads in seen)

    def fails() -> None:
        raise ValueError("shard failed")

    with pytest.raises(ValueError, match="shard failed"):
        workers.run([fails, lambda: None])


def _tiny_trainer():
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    from pipeline.local.dataset import read_examples
    from pipeline.local.sft_head import CompletionHeadSFTTrainer
    from pipeline.local.weights import tiny_model_dir

    examples = read_examples((ROOT / "data/samples/person_train.jsonl").read_bytes())[:8]
    torch.manual_seed(0)
    args = SFTConfig(output_dir=tempfile.mkdtemp(prefix="distill-row-shards-"), per_device_train_batch_size=4,
                     report_to=[], use_cpu=True, max_length=1024, disable_tqdm=True, bf16=False, fp16=False,
                     gradient_checkpointing=False, save_strategy="no")
    trainer = CompletionHeadSFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir(), dtype=torch.float32), args=args,
        train_dataset=Dataset.from_list(examples), processing_class=AutoTokenizer.from_pretrained(tiny_model_dir()),
        peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    return trainer, next(iter(trainer.get_train_dataloader()))


def test_a_step_split_over_threads_trains_what_the_whole_batch_trains() -> None:
    trainer, batch = _tiny_trainer()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train's loop, which this skips
    model = trainer.model
    model.train()
    assert int(batch["attention_mask"].sum(1).min()) < batch["attention_mask"].shape[1]  # padded rows
    threads: list[str] = []
    model.get_input_embeddings().register_forward_hook(lambda *_: threads.append(threading.current_thread().name))
    trained = [p for p in model.parameters() if p.requires_grad]

    def step(shards: int) -> tuple[float, list[torch.Tensor], float]:
        for p in trained:
            p.grad = None
        trainer.step_shards = shards
        trainer._metrics["train"].clear()
        loss = trainer.training_step(model, dict(batch), num_items_in_batch=None)
        accuracy = trainer._metrics["train"]["mean_token_accuracy"]
        assert len(accuracy) == 1  # logged once per step, split or not
        return float(loss), [p.grad.clone() for p in trained], accuracy[0]

    whole = step(1)
    assert threads == ["MainThread"]
    threads.clear()
    split = step(2)
    assert len(threads) == 2 and all(name.startswith("train-rows") for name in threads)
    assert split[0] == pytest.approx(whole[0], rel=1e-5)
    assert split[2] == whole[2]
    assert max(float((a - b).abs().max()) for a, b in zip(whole[1], split[1], strict=True)) < 1e-6
    assert trainer.backbone_passes == 3  # one whole pass, then one per shard


def test_a_validation_pass_split_over_threads_gives_the_whole_batchs_loss() -> None:
    trainer, batch = _tiny_trainer()
    model = trainer.model
    model.eval()
    threads: list[tuple[str, bool]] = []
    model.get_input_embeddings().register_forward_hook(
        lambda *_: threads.append((threading.current_thread().name, torch.is_grad_enabled())))

    def loss(shards: int) -> tuple[float, list[float]]:
        trainer.step_shards = shards
        trainer._metrics["eval"].clear()
        value, logits, labels = trainer.prediction_step(model, dict(batch), prediction_loss_only=True)
        assert logits is None and labels is None
        return float(value), trainer._metrics["eval"]["mean_token_accuracy"]

    whole = loss(1)
    assert threads == [("MainThread", False)]
    threads.clear()
    split = loss(2)
    assert sorted(threads) == [("train-rows_0", False), ("train-rows_1", False)]  # no graph built
    assert split[0] == pytest.approx(whole[0], rel=1e-5)
    assert split[1] == whole[1]
    assert trainer.backbone_passes == 0  # validation is not training
