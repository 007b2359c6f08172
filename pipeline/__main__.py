"""`python -m pipeline <command> ...`: the same functions the UI calls."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pipeline.errors import DistillError, explain

#: Each name is a module in pipeline/commands/ with add_parser(subparsers) and run(args) -> int.
COMMANDS: list[str] = ["validate", "generate", "serve", "finetune", "jobs", "eval", "bench", "push", "pull", "batches"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description="Distill Studio command line")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"pipeline.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except DistillError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 1
    except Exception as exc:  # a provider or network failure: a readable line, not a traceback
        print(f"error: {explain(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
