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

import torch
import torch.nn.functional as F
from trl import SFTTrainer


class CompletionHeadSFTTrainer(SFTTrainer):
    """SFTTrainer whose loss projects only the completion positions through the LM head."""

    head_rows = 0  # positions projected through the LM head in training (reported by the trainer)
    # Set where bf16 is native (pipeline/local/frozen_bf16.py): the frozen head as a bf16 copy.
    bf16_head = None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:  # a caller that wants the logits gets TRL's own path
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        mode = "train" if self.model.training else "eval"
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
        valid = int(targets.numel())
        if mode == "train":
            self.head_rows += valid
            if "attention_mask" in inputs:
                self._total_train_tokens += int(inputs["attention_mask"].sum())
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        with torch.no_grad():
            correct = int((logits.argmax(-1) == targets).sum())
        self._metrics[mode]["mean_token_accuracy"].append(correct / valid if valid else 0.0)
        return loss
