"""`python -m pipeline push PATH --repo-id NS/NAME`: a chat JSONL file to a Hub dataset repo.

--json prints {"repo_id", "url", "commit_url", "commit_oid", "private", "created", "splits",
"files", "deleted"}. The token comes from --token, else HF_TOKEN, else a saved `hf auth login`.
"""

from __future__ import annotations

import argparse

from pipeline.commands import emit_json, progress
from pipeline.dataset import read_dataset
from pipeline.errors import InputError, UnreadableFileError
from pipeline.hub.auth import resolve_token
from pipeline.hub.card import LICENSES
from pipeline.hub.push import push_dataset
from pipeline.hub.stats import card_figures, split_for_push


def read_examples(path: str) -> list[dict]:
    """Examples of a dataset file (any format the Dataset tab reads); unreadable lines stop the push."""
    result = read_dataset(path)
    if not result.readable:
        reason = result.problems[0].message if result.problems else "unknown format"
        raise UnreadableFileError(f"Cannot read {path}: {reason}")
    if result.unparsed:
        raise InputError(f"{path} has {len(result.unparsed)} lines that are not examples. See them with "
                         f"`python -m pipeline validate {path}`, fix them, then push again.")
    return result.examples


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("push", help="push a chat JSONL dataset to a Hugging Face Hub dataset repo")
    parser.add_argument("path", help="training examples, chat JSONL")
    parser.add_argument("--repo-id", required=True, help="NAMESPACE/NAME, or NAME for your own namespace")
    parser.add_argument("--validation", help="validation examples, chat JSONL (else --val-fraction of PATH)")
    parser.add_argument("--val-fraction", type=float, default=0.0,
                        help="hold out this fraction of PATH as the validation split (default 0)")
    vis = parser.add_mutually_exclusive_group()
    vis.add_argument("--private", dest="private", action="store_true", default=True,
                     help="create the repo private (default)")
    vis.add_argument("--public", dest="private", action="store_false", help="create the repo public")
    parser.add_argument("--token", help="Hugging Face token with write access (default: $HF_TOKEN)")
    parser.add_argument("--message", help="commit message")
    parser.add_argument("--license", default="apache-2.0", choices=LICENSES, help="license in the dataset card")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    token = resolve_token(args.token, required=True, allow_env=True)
    examples = read_examples(args.path)
    if args.validation:
        splits = {"train": examples, "validation": read_examples(args.validation)}
    else:
        splits = split_for_push(examples, args.val_fraction)
    card_info = {"license": args.license, **card_figures(splits)}
    result = push_dataset(splits, args.repo_id, token=str(token), private=args.private,
                          commit_message=args.message, card_info=card_info, progress=progress)
    if args.json:
        emit_json(result.to_dict())
    else:
        counts = ", ".join(f"{n} {s}" for s, n in result.splits.items())
        print(f"Pushed {counts} to {result.url} ({'private' if result.private else 'public'})")
    return 0
