"""Loss on the completion only, with logits only where the loss is taken.

TRL 1.16's SFTTrainer projects every position of every example through the 49,152-word LM head
(its chunked kernel keeps only the masked positions on CUDA/XPU; on CPU it scores all of them, to
keep tile shapes fixed) and computes each position's entropy and top-1 flag for its log. The
fine-tunes here are ~50-token chats whose completion is 39% (fictional person) to 7% (ticket
labels) of the tokens, so most of that head's work (forward, and recomputed again in backward) is
thrown away. This trainer runs the model's backbone, projects only the positions whose next token
is a completion token and takes the same loss (sum of -log p over those tokens / TRL's
`num_items_in_batch`), and logs `mean_token_accuracy` from those logits as TRL does; it drops TRL's
`entropy` log, which nothing here reads. Measured in docs/bench/recipe.md.
"""

from __future__ import annotations

from collections import Counter

import torch
import torch.nn.functional as F
from trl import SFTTrainer

from pipeline.local import row_shards


class CompletionHeadSFTTrainer(SFTTrainer):
    """SFTTrainer whose loss projects only the completion positions through the LM head, and whose
    training step can split its batch by rows over worker threads (pipeline/local/row_shards.py)."""

    head_rows = 0  # positions projected through the LM head in training (reported by the trainer)
    backbone_passes = 0  # forward passes of the backbone in training: one per step, or one per row shard
    # Set where bf16 is native (pipeline/local/frozen_bf16.py): the frozen head as a bf16 copy.
    bf16_head = None
    # Threads of the next training step over which its rows are split (pipeline/local/train_threads.py
    # sets it per step); 1 computes the batch whole on the calling thread, as TRL does.
    step_shards = 1
    _workers: row_shards.Workers | None = None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:  # a caller that wants the logits gets TRL's own path
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss, counts = self._completion_loss(model, inputs, num_items_in_batch)
        self._record(counts)
        return loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        parts = row_shards.split(inputs, self.step_shards) if self.args.gradient_accumulation_steps == 1 else None
        if not parts or len(parts) < 2:
            return super().training_step(model, inputs, num_items_in_batch)
        model.train()
        if num_items_in_batch is None:  # each shard's loss is divided by the whole batch's count
            num_items_in_batch = _completion_count(inputs)

        def shard(part: dict) -> tuple[torch.Tensor, Counter]:
            # Autocast's state is the calling thread's, so each worker enters the trainer's context.
            with self.compute_loss_context_manager():
                loss, counts = self._completion_loss(model, part, num_items_in_batch)
            self.accelerator.backward(loss)
            return loss.detach(), counts

        return self._run_shards(shard, parts)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """A validation pass (loss only) split by rows as the training steps are."""
        parts = row_shards.split(inputs, self.step_shards) if prediction_loss_only else None
        if not parts or len(parts) < 2:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        count = _completion_count(inputs)

        def shard(part: dict) -> tuple[torch.Tensor, Counter]:
            # Grad mode is per thread too: the workers leave it on unless told.
            with torch.no_grad(), self.compute_loss_context_manager():
                return self._completion_loss(model, part, count)

        return self._run_shards(shard, parts), None, None

    def _run_shards(self, shard, parts: list[dict]) -> torch.Tensor:
        """Runs `shard` on each part on the workers' threads, records what they counted once, as one
        pass over the batch would, and returns the batch's loss (the shards' losses summed)."""
        parts = [self._prepare_inputs(part) for part in parts]
        self._workers = self._workers or row_shards.Workers()
        done = self._workers.run([lambda part=part: shard(part) for part in parts],
                                 threads_each=max(1, self.step_shards // len(parts)))
        self._record(sum((counts for _, counts in done), Counter()))
        return sum(loss for loss, _ in done)

    def _completion_loss(self, model, inputs, num_items_in_batch) -> tuple[torch.Tensor, Counter]:
        """The loss and what the log counts (positions scored and right, tokens); shares no state, so
        row shards can run it on several threads at once."""
        causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
        backbone = getattr(causal_lm, causal_lm.base_model_prefix)
        labels = inputs["labels"][:, 1:]
        mask = labels != -100
        targets = labels[mask]
        # Accelerate puts bf16 autocast around the model's forward, which this bypasses: the same here.
        with self.accelerator.autocast():
            hidden = backbone(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
                              use_cache=False).last_hidden_state[:, :-1]
            # Only these rows reach the head (a bf16 copy of it where bf16 is native: frozen_bf16.py).
            head = self.bf16_head or causal_lm.get_output_embeddings()
            logits = head(hidden[mask]).float()
        total = F.cross_entropy(logits, targets, reduction="sum")
        count = num_items_in_batch if num_items_in_batch is not None else mask.sum()
        loss = total / torch.as_tensor(count).clamp(min=1)
        with torch.no_grad():
            correct = int((logits.argmax(-1) == targets).sum())
        tokens = int(inputs["attention_mask"].sum()) if "attention_mask" in inputs else 0
        return loss, Counter(valid=int(targets.numel()), correct=correct, tokens=tokens, passes=1)

    def _record(self, counts: Counter) -> None:
        mode = "train" if self.model.training else "eval"
        if mode == "train":
            self.head_rows += counts["valid"]
            self.backbone_passes += counts["passes"]
            self._total_train_tokens += counts["tokens"]
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        valid = counts["valid"]
        self._metrics[mode]["mean_token_accuracy"].append(counts["correct"] / valid if valid else 0.0)


def _completion_count(inputs) -> int:
    """Tokens the loss is taken on in the batch (labels shifted by one, -100 left out)."""
    return int((inputs["labels"][:, 1:] != -100).sum())
