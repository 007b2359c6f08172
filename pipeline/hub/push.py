"""Push a dataset's splits to a Hub dataset repo as Parquet plus a dataset card, in one commit.

One `create_commit` (not `datasets`' push_to_hub, which makes one commit for the data and another
for the card) so a failure leaves the repo as it was, and `parent_commit` turns a concurrent change
into a 409 instead of silently mixing two pushes. Nothing here writes to the local dataset: the
Parquet files are built in memory from the examples passed in.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.errors import InputError
from pipeline.hub import auth
from pipeline.hub.card import build_card, data_path
from pipeline.hub.errors import explain_hub

Progress = Callable[[str], None]


@dataclass
class PushResult:
    repo_id: str
    url: str
    commit_url: str
    commit_oid: str
    private: bool | None
    splits: dict[str, int]
    files: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    created: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parquet_bytes(examples: list[dict]) -> bytes:
    """One split as Parquet via `datasets` (the schema its loaders and the dataset viewer expect)."""
    import datasets

    try:
        table = datasets.Dataset.from_list(examples)
    except (TypeError, ValueError) as exc:  # pyarrow's ArrowInvalid/ArrowTypeError are ValueError/TypeError
        raise InputError(f"These examples cannot be stored as one table: {str(exc)[:200]}. Make the extra "
                         "fields (tools, weight, ...) the same type in every example.") from exc
    buffer = io.BytesIO()
    table.to_parquet(buffer)
    return buffer.getvalue()


def card_text(repo_id: str, splits: dict[str, list[dict]], card_info: dict | None = None) -> str:
    """The README.md that would be pushed (for a preview before pushing)."""
    info = dict(card_info or {})
    return str(build_card(repo_id=repo_id, splits={s: len(v) for s, v in splits.items()}, **info))


def _check_splits(splits: dict[str, list[dict]]) -> None:
    if not splits or not splits.get("train"):
        raise InputError("There is nothing to push: the train split is empty. Add examples first.")
    for name, examples in splits.items():
        if any(not isinstance(ex, dict) or not isinstance(ex.get("messages"), list) for ex in examples):
            raise InputError(f"Every {name} example needs a 'messages' list; fix or remove the others in the "
                             "Dataset tab, then push again.")


def push_dataset(splits: dict[str, list[dict]], repo_id: str, *, token: str, private: bool = True,
                 commit_message: str | None = None, card_info: dict | None = None,
                 progress: Progress | None = None) -> PushResult:
    """Upload `splits` (e.g. {"train": [...], "validation": [...]}) and the card to `repo_id`.

    `repo_id` may be a bare NAME (pushed to the token owner's namespace). The repo is created if
    missing (private unless `private=False`); pushing again replaces the data files and the card.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    say = progress or (lambda _msg: None)
    repo_id = auth.check_repo_id(repo_id)
    _check_splits(splits)
    if not token:
        raise auth.MissingKeyError(auth.NO_TOKEN)
    # Everything local first, so a bad example fails before the Hub is touched.
    files = {data_path(name): parquet_bytes(examples) for name, examples in splits.items() if examples}
    api = HfApi(endpoint=auth.endpoint(), token=token, library_name="distill-studio")
    target = repo_id
    try:
        say("Checking the token")
        target = auth.target_repo(repo_id, auth.whoami(api, token))
        files["README.md"] = card_text(target, splits, card_info).encode("utf-8")
        say(f"Creating or opening dataset repo {target}")
        existed = api.repo_exists(target, repo_type="dataset")
        if not existed:
            api.create_repo(target, repo_type="dataset", private=private, exist_ok=True)
        info = api.repo_info(target, repo_type="dataset")
        stale = sorted(s.rfilename for s in info.siblings or []
                       if s.rfilename.startswith("data/") and s.rfilename not in files)
        operations: list[Any] = [CommitOperationAdd(path, content) for path, content in files.items()]
        operations += [CommitOperationDelete(path) for path in stale]
        say(f"Uploading {len(files)} files to {target}")
        commit = api.create_commit(
            target, operations, repo_type="dataset",
            commit_message=(commit_message or "").strip() or "Update dataset from Distill Studio",
            parent_commit=info.sha if info.sha and len(info.sha) == 40 else None,
        )
    except Exception as exc:
        raise explain_hub(exc, target, "pushing") from exc
    base = (auth.endpoint() or "https://huggingface.co").rstrip("/")
    return PushResult(repo_id=target, url=f"{base}/datasets/{target}", commit_url=commit.commit_url,
                      commit_oid=commit.oid, private=info.private, created=not existed,
                      splits={s: len(v) for s, v in splits.items() if v}, files=sorted(files), deleted=stale)
