"""Load one split of a Hub dataset repo as chat examples.

Files are found the way `datasets` finds them: the card's `configs` (per-split data_files patterns)
when there is one, otherwise split names in file and folder names (train / validation / test, files
without a split name are train). They are downloaded into a throw-away folder, never the shared
Hugging Face cache: on a Space a private file fetched with one visitor's token must not be left where
another visitor's request could be served from it. Sizes are checked before downloading, since a
public Space has little memory and disk to spare.
"""

from __future__ import annotations

import fnmatch
import os
import re
import socket
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pipeline import config
from pipeline.errors import InputError
from pipeline.hub import auth
from pipeline.hub.columns import to_examples
from pipeline.hub.errors import HubNetworkError, explain_hub

#: How long the reachability check waits: the Hub client's own retries took ~30 s to give up offline.
PROBE_TIMEOUT_S = 5.0

FORMATS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}
_SPLIT_WORDS = {"train": r"train(ing)?", "validation": r"valid(ation)?|val|dev", "test": r"test(ing)?|eval"}


def max_rows() -> int:
    return config.MAX_PULL_ROWS.get()


def max_bytes() -> int:
    return int(config.MAX_PULL_MB.get() * 1_000_000)


@dataclass
class LoadResult:
    repo_id: str
    config: str
    split: str
    examples: list[dict]
    columns: list[str]
    mapping: dict[str, str]
    rows: int
    skipped: int
    truncated: bool
    files: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Everything but the examples (for --json and the UI's status line)."""
        out = asdict(self)
        out["examples"] = len(self.examples)
        return out


def _configs_from_card(text: str) -> list[dict]:
    from huggingface_hub import DatasetCard

    configs = DatasetCard(text, ignore_metadata_errors=True).data.to_dict().get("configs") or []
    return [c for c in configs if isinstance(c, dict) and c.get("config_name")]


def _split_patterns(config: dict) -> dict[str, list[str]]:
    """A `configs` entry's data_files as {split: [patterns]} (str, list or list of {split, path})."""
    data_files = config.get("data_files") or []
    if isinstance(data_files, str):
        return {"train": [data_files]}
    if isinstance(data_files, dict):
        return {k: v if isinstance(v, list) else [v] for k, v in data_files.items()}
    out: dict[str, list[str]] = {}
    for item in data_files:
        if isinstance(item, str):
            out.setdefault("train", []).append(item)
        elif isinstance(item, dict) and item.get("path"):
            paths = item["path"] if isinstance(item["path"], list) else [item["path"]]
            out.setdefault(str(item.get("split", "train")), []).extend(paths)
    return out


def _split_of(path: str) -> str:
    for split, words in _SPLIT_WORDS.items():
        if re.search(rf"(^|[/_.\-])({words})([/_.\-]|$)", path.lower()):
            return split
    return "train"


def resolve_files(paths: list[str], card: str | None, config: str | None) -> tuple[str, dict[str, list[str]]]:
    """(config name, {split: data files}) for a repo whose files are `paths`."""
    data = [p for p in paths if os.path.splitext(p)[1] in FORMATS]
    configs = _configs_from_card(card) if card else []
    if configs:
        names = [c["config_name"] for c in configs]
        chosen = next((c for c in configs if c["config_name"] == config), None) if config else \
            next((c for c in configs if c.get("default")), None) or \
            next((c for c in configs if c["config_name"] == "default"), configs[0])
        if chosen is None:
            raise InputError(f"There is no config '{config}'; this dataset has: {', '.join(names)}.")
        return chosen["config_name"], {
            split: sorted({p for p in data for pat in pats if fnmatch.fnmatch(p, pat)})
            for split, pats in _split_patterns(chosen).items()}
    if config and config != "default":
        data = [p for p in data if p.startswith(f"{config}/")]
        if not data:
            raise InputError(f"There is no config '{config}' (no data files under {config}/).")
    if data:
        # Like `datasets`, a repo without configs is read with one loader: its most common format
        # (ties go to Parquet, then JSON, then CSV).
        kinds = [FORMATS[os.path.splitext(p)[1]] for p in data]
        best = max(["parquet", "json", "csv"], key=lambda k: (kinds.count(k), -["parquet", "json", "csv"].index(k)))
        data = [p for p, kind in zip(data, kinds, strict=True) if kind == best]
    splits: dict[str, list[str]] = {}
    for p in sorted(data):
        splits.setdefault(_split_of(p), []).append(p)
    return config or "default", splits


def _read(files: list[str], limit: int, cache: str) -> tuple[list[dict], list[str], bool]:
    """Rows (at most `limit`) of the downloaded files, read with `datasets`' own loaders."""
    import datasets

    fmt = FORMATS[os.path.splitext(files[0])[1]]
    if any(FORMATS[os.path.splitext(f)[1]] != fmt for f in files):
        raise InputError("This split mixes file formats; pick a config whose files share one format.")
    reader = {"parquet": datasets.Dataset.from_parquet, "json": datasets.Dataset.from_json,
              "csv": datasets.Dataset.from_csv}[fmt]
    table = reader(files, cache_dir=cache)
    truncated = len(table) > limit
    if truncated:
        table = table.select(range(limit))
    return table.to_list(), list(table.column_names), truncated


def check_reachable(endpoint: str | None) -> None:
    """Fail in seconds, with what to do, when the Hub cannot be reached at all (no network, a name
    that does not resolve, a refused connection), instead of after the Hub client's retries."""
    url = urlparse(endpoint or "https://huggingface.co")
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        reason = "its name does not resolve" if isinstance(exc, socket.gaierror) else type(exc).__name__
        raise HubNetworkError(f"Cannot reach the Hugging Face Hub at {host} ({reason}): this machine seems to "
                              "have no connection to it. Check the network (or HF_ENDPOINT), then load again; "
                              "or upload the dataset file in the Dataset tab.") from exc


def load_from_hub(repo_id: str, *, config: str | None = None, split: str = "train",
                  mapping: dict[str, str] | None = None, token: str | Literal[False] = False,
                  revision: str | None = None) -> LoadResult:
    """One split of `repo_id` as chat examples; `token=False` reads anonymously."""
    from huggingface_hub import HfApi

    repo_id = auth.check_repo_id(repo_id)
    if "/" not in repo_id:
        raise InputError(f"Give the full repo id, NAMESPACE/{repo_id}.")
    check_reachable(auth.endpoint())
    api = HfApi(endpoint=auth.endpoint(), token=token, library_name="distill-studio")
    with tempfile.TemporaryDirectory(prefix="distill-pull-") as tmp:
        try:
            tree = {f.path: getattr(f, "size", 0) or 0 for f in api.list_repo_tree(
                repo_id, repo_type="dataset", recursive=True, revision=revision) if hasattr(f, "size")}
            card = None
            if "README.md" in tree:
                card_file = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=revision,
                                                cache_dir=tmp)
                card = Path(card_file).read_text(encoding="utf-8")
            config_name, splits = resolve_files(list(tree), card, config)
            files = splits.get(split) or []
            if not files:
                have = ", ".join(s for s, f in splits.items() if f) or "none"
                raise InputError(f"{repo_id} ({config_name}) has no data files for split '{split}'. "
                                 f"Splits found: {have}.")
            size = sum(tree.get(f, 0) for f in files)
            if size > max_bytes():
                raise InputError(f"Split '{split}' is {size / 1e6:.0f} MB, above this app's limit of "
                                 f"{max_bytes() / 1e6:.0f} MB (DISTILL_MAX_PULL_MB). Pick a smaller split.")
            local = [api.hf_hub_download(repo_id, f, repo_type="dataset", revision=revision, cache_dir=tmp)
                     for f in files]
        except InputError:
            raise
        except Exception as exc:
            raise explain_hub(exc, repo_id, "loading") from exc
        rows, columns, truncated = _read(local, max_rows(), os.path.join(tmp, "arrow"))
    examples, used, skipped = to_examples(rows, columns, mapping)
    return LoadResult(repo_id=repo_id, config=config_name, split=split, examples=examples, columns=columns,
                      mapping=used, rows=len(rows), skipped=skipped, truncated=truncated, files=files)
