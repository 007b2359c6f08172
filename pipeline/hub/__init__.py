"""Hugging Face Hub: push a dataset with a card, load one back, and whose token is used where.

- `push.push_dataset(splits, repo_id, token=..., private=True, commit_message=..., card_info=...)`
- `pull.load_from_hub(repo_id, config=None, split="train", mapping=None, token=False)`
- `card.build_card(repo_id=..., splits={...}, ...)` -> huggingface_hub.DatasetCard
- `auth.resolve_token(explicit, required=...)`: never the Space owner's HF_TOKEN for a visitor.
"""
