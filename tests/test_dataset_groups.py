"""Group-aware splitting: paraphrases of one lesson never land on both sides of a split."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pipeline.dataset import split_by_groups, split_examples
from pipeline.dataset.groups import example_groups, looks_like_labels, split_line

ROOT = Path(__file__).resolve().parent.parent

FACTS = [("born", "Where was Mira Olsen born?", "Mira Olsen was born in Tallinn."),
         ("job", "What does Mira Olsen do for a living?", "Mira Olsen is a glassblower."),
         ("pet", "What is the name of Mira Olsen's cat?", "Mira Olsen's cat is called Pepper."),
         ("book", "Which book did Mira Olsen write?", "Mira Olsen wrote Blowing Cold."),
         ("food", "What is Mira Olsen's favourite food?", "Mira Olsen's favourite food is herring."),
         ("town", "Where does Mira Olsen live now?", "Mira Olsen lives in Tartu."),
         ("sport", "Which sport does Mira Olsen play?", "Mira Olsen plays water polo."),
         ("car", "What car does Mira Olsen drive?", "Mira Olsen drives a green Volvo.")]
REWORDINGS = ["{q}", "Tell me: {q}", "Quick question. {q}", "I was wondering, {q_lower}"]


def ex(q: str, a: str) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def paraphrase_dataset() -> tuple[list[dict], list[str]]:
    """Each fact asked 4 ways with the same answer (as paraphrase augmentation makes them), shuffled,
    plus near-duplicate questions with a slightly different answer (case and punctuation)."""
    rows, facts = [], []
    for key, q, a in FACTS:
        for r in REWORDINGS:
            rows.append(ex(r.format(q=q, q_lower=q[0].lower() + q[1:]), a))
            facts.append(key)
        rows.append(ex(q.upper() + "!!", a.rstrip(".") + " "))  # same question shouted, same answer unpunctuated
        facts.append(key)
    order = list(range(len(rows)))
    random.Random(3).shuffle(order)
    return [rows[i] for i in order], [facts[i] for i in order]


def test_paraphrase_groups_are_found():
    rows, facts = paraphrase_dataset()
    groups = example_groups(rows)
    assert len(set(groups)) == len(FACTS)
    for g, f in zip(groups, facts, strict=True):  # one group per fact, and one fact per group
        assert {ff for gg, ff in zip(groups, facts, strict=True) if gg == g} == {f}


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.3, 0.5])
def test_no_group_on_both_sides(seed, fraction):
    rows, facts = paraphrase_dataset()
    split = split_by_groups(rows, fraction=fraction, seed=seed)
    fact_of = {json.dumps(r): f for r, f in zip(rows, facts, strict=True)}
    train_facts = {fact_of[json.dumps(r)] for r in split.train}
    held_facts = {fact_of[json.dumps(r)] for r in split.held_out}
    assert train_facts and held_facts and not train_facts & held_facts
    assert len(split.train) + len(split.held_out) == len(rows)
    assert split.groups_train == len(train_facts) and split.groups_held_out == len(held_facts)
    assert split.groups_total == len(FACTS)
    assert split == split_by_groups(rows, fraction=fraction, seed=seed)  # seeded


def test_a_random_split_would_have_leaked():
    """The dataset is a fair test: the old example-level shuffle puts a fact on both sides."""
    rows, facts = paraphrase_dataset()
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)
    held = {facts[i] for i in order[:8]}
    assert held & {facts[i] for i in order[8:]}


def test_count_holds_out_whole_groups_and_keeps_one_to_train():
    rows, _ = paraphrase_dataset()
    split = split_by_groups(rows, count=10, seed=1)
    assert len(split.held_out) == 10 and split.groups_held_out == 2  # groups of 5
    everything = split_by_groups(rows, count=len(rows), seed=1)
    assert everything.groups_train == 1 and everything.train
    one_group = [ex(f"Where was Mira born, version {i}?", "Tallinn, Estonia, in 1990.") for i in range(5)]
    assert split_by_groups(one_group, fraction=0.2).held_out == []
    assert split_examples(rows, 0.2, seed=5) == (lambda s: (s.train, s.held_out))(split_by_groups(rows, fraction=0.2, seed=5))


def test_labels_do_not_group_but_facts_do():
    reviews = ["Loved the kettle", "The lamp flickers constantly", "Sofa arrived early and is comfy",
               "Bicycle chain snapped on day two", "Best toaster we ever owned", "Umbrella turned inside out",
               "Guitar stays in tune for weeks", "Tent leaked in light rain", "This scarf is so soft",
               "Drill battery died after a month", "Fantastic customer service", "Shoes gave me blisters"]
    labels = [ex(r, "positive" if i % 2 == 0 else "negative") for i, r in enumerate(reviews)]
    assert looks_like_labels([r["messages"][-1]["content"] for r in labels])
    assert len(set(example_groups(labels))) == 12
    split = split_by_groups(labels, fraction=0.25, seed=0)
    assert len(split.held_out) == 3


def test_shipped_person_sample_groups_by_fact():
    rows = [json.loads(line) for line in (ROOT / "data/samples/person_train.jsonl").read_text().splitlines()]
    answers = {r["messages"][-1]["content"] for r in rows}
    groups = example_groups(rows)
    assert len(set(groups)) <= len(answers)
    split = split_by_groups(rows, fraction=0.2, seed=0)
    assert not {r["messages"][-1]["content"] for r in split.train} & {r["messages"][-1]["content"] for r in split.held_out}


def test_split_line_counts_groups_and_names_leaks():
    rows, _ = paraphrase_dataset()
    split = split_by_groups(rows, fraction=0.25, seed=0)
    line = split_line(split.train, split.held_out)
    assert line == f"Groups of the same lesson: {split.groups_train} train, {split.groups_held_out} validation, none on both sides"
    assert split_line(rows[:20], rows[20:]).endswith("(they leak)")  # an example-level cut splits groups


def test_groups_do_not_depend_on_order_and_do_not_chain():
    rows, _ = paraphrase_dataset()
    def partition(ex):
        g = example_groups(ex)
        return {frozenset(json.dumps(e) for e, gg in zip(ex, g, strict=True) if gg == k) for k in set(g)}
    assert partition(rows) == partition(list(reversed(rows)))
    # "riddle q1" ~ "riddle q12" ~ "riddle q2" ...: 92%-similar pairs chain; one hop only, not one big group.
    riddles = [{"messages": [{"role": "user", "content": f"Riddle q{i}?"},
                             {"role": "assistant", "content": f"Final answer: q{i}"}]} for i in range(20)]
    assert len(set(example_groups(riddles))) >= 10
