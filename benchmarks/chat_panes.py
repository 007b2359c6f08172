"""Three panes whose models answer after 0.3 s, 1 s and 3 s: time to first token per pane, streamed
concurrently (pipeline.chat.stream_panes) versus one after another (the baseline), in one run.

    .venv/bin/python benchmarks/chat_panes.py [--runs 5]

A pane's time to first token is measured from the moment the user's message is sent. Concurrent
panes should each see about their own model's latency; one after another, a pane waits for every pane
before it. Also reports what the viewer sees (the first throttled snapshot showing text) and how many
snapshots the merger sent for how many tokens.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.chat import PaneSpec, stream_panes  # noqa: E402
from tests.fakes.chat_server import FakeChatServer  # noqa: E402

LATENCIES = (0.3, 1.0, 3.0)
REPLY = " ".join(f"word{i}" for i in range(40))  # 40 tokens, 10 ms apart: streams for ~0.4 s


def concurrent_run(srv: FakeChatServer) -> tuple[list[float], list[float], int, int]:
    client = srv.client()
    specs = [PaneSpec(client, f"delay-{lat}-m{i}", [{"role": "user", "content": "q"}]) for i, lat in enumerate(LATENCIES)]
    start = time.perf_counter()
    seen: list[float | None] = [None] * len(specs)
    snapshots = 0
    last = None
    for snap in stream_panes(specs):
        snapshots += 1
        now = time.perf_counter() - start
        for i, s in enumerate(snap):
            if s.text and seen[i] is None:
                seen[i] = now
        last = snap
    assert last is not None and all(s.status == "done" and s.text == REPLY for s in last)
    ttft = [s.metrics.ttft_s for s in last]
    tokens = sum(s.metrics.output_tokens for s in last)
    return ttft, [x or 0.0 for x in seen], snapshots, tokens


def sequential_run(srv: FakeChatServer) -> list[float]:
    """The baseline: the same requests, one pane after the other, timed from the same send."""
    client = srv.client()
    start = time.perf_counter()
    ttft = []
    for i, lat in enumerate(LATENCIES):
        stream = client.chat.completions.create(model=f"delay-{lat}-m{i}", messages=[{"role": "user", "content": "q"}],
                                                stream=True)
        first = None
        for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - start
        ttft.append(first or 0.0)
    return ttft


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    conc, seen, seq = [[] for _ in LATENCIES], [[] for _ in LATENCIES], [[] for _ in LATENCIES]
    snaps, toks = [], []
    with FakeChatServer(answers={"q": REPLY}) as srv:
        # One discarded round of each: first-call imports and price-table loading are not the merger.
        concurrent_run(srv)
        sequential_run(srv)
        for _ in range(args.runs):
            t, s, n, k = concurrent_run(srv)
            for i in range(len(LATENCIES)):
                conc[i].append(t[i])
                seen[i].append(s[i])
            snaps.append(n)
            toks.append(k)
            for i, x in enumerate(sequential_run(srv)):
                seq[i].append(x)
    print(f"runs: {args.runs}; reply: 40 tokens per pane, 10 ms apart\n")
    print("| model latency | concurrent TTFT (median / max) | within 10%: median / every run | shown in UI "
          "(median / max) | one-after-another TTFT (median) |")
    print("|---|---|---|---|---|")
    for i, lat in enumerate(LATENCIES):
        med_ok = "yes" if statistics.median(conc[i]) <= lat * 1.10 else "NO"
        all_ok = "yes" if max(conc[i]) <= lat * 1.10 else "NO"
        print(f"| {lat:.1f} s | {statistics.median(conc[i]):.3f} / {max(conc[i]):.3f} s | {med_ok} / {all_ok} "
              f"| {statistics.median(seen[i]):.3f} / {max(seen[i]):.3f} s | {statistics.median(seq[i]):.3f} s |")
    print(f"\nsnapshots sent per turn: median {statistics.median(snaps):.0f} for {statistics.median(toks):.0f} "
          "tokens (one per token would be the flood the throttle prevents)")


if __name__ == "__main__":
    main()
