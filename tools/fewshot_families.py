#!/usr/bin/env python3
"""Exact and token accuracy per rule family of a few-shot evaluation.

`etrm eval` writes one line per row to <out>/eval_<split>.jsonl with the row's task id
("<rule>#<seed>:<index>", the rule as data::describe writes it, e.g. "color_map(1>3,2>5)" or
"gravity(dir=2)+tile(1x3)"). This groups the rows by family (compositions as one group) and
prints a table, so a run shows which rules the model reads from the demonstrations.

    tools/fewshot_families.py runs/main/eval_train_rules.jsonl runs/main/eval_held_out.jsonl
"""
import collections
import json
import pathlib
import re
import sys

FAMILY_TABLE = pathlib.Path(__file__).resolve().parent.parent / "include/etrm/data/generator_families.hpp"


def family(task_id: str) -> str:
    rule = task_id.split("#", 1)[0]
    if "+" in rule:
        return "(compositions)"
    return rule.split("(", 1)[0]


def held_out_families() -> set:
    """The families the generator's table marks held out (never in the training split)."""
    rows = re.findall(r'\{family::\w+, "(\w+)", "[^"]*", (true|false),', FAMILY_TABLE.read_text())
    if not rows:
        sys.exit(f"{FAMILY_TABLE}: no family table found")
    return {name for name, held in rows if held == "true"}


def novel(task_id: str, held: set) -> bool:
    """Whether a row's rule uses a held-out family (alone or in a composition)."""
    return any(step.split("(", 1)[0] in held for step in task_id.split("#", 1)[0].split("+"))


def by_family(path) -> dict:
    """Rows, exact rows and summed token accuracy of a file per family."""
    groups = collections.defaultdict(lambda: [0, 0, 0.0])
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                try:
                    row = json.loads(line)
                    g = groups[family(row["task_id"])]
                    g[0] += 1
                    g[1] += bool(row["exact"])
                    g[2] += float(row["accuracy"])
                except (ValueError, KeyError) as e:
                    sys.exit(f"{path}:{n}: not an eval row ({e})")
    except OSError as e:
        sys.exit(f"{path}: {e.strerror}")
    return groups


def main(paths):
    if not paths:
        sys.exit("usage: fewshot_families.py EVAL_JSONL...")
    for path in paths:
        print(f"{path}\n  {'family':<20} {'rows':>5} {'exact':>8} {'tokens':>8}")
        for name, (rows, exact, acc) in sorted(by_family(path).items()):
            print(f"  {name:<20} {rows:>5} {100 * exact / rows:>7.1f}% {100 * acc / rows:>7.1f}%")
        if "held_out" in pathlib.Path(path).name:
            for name, (rows, exact) in by_kind(path).items():
                print(f"  {name:<44} {rows:>5} rows {100 * exact / rows:>6.1f}% exact")


def kind(task_id: str, held: set) -> str:
    """Why a held-out row is held out: a held-out family, a reserved composition of training
    families, or a held-out parameter value of one training family."""
    if novel(task_id, held):
        return "rules with a held-out family"
    if "+" in task_id.split("#", 1)[0]:
        return "reserved compositions of training families"
    return "held-out parameter values"


def by_kind(path) -> dict:
    """Rows and exact rows of a file per kind (see kind); rows of the training split all fall
    under "held-out parameter values" and "reserved compositions", so use it on held-out files."""
    held = held_out_families()
    kinds = collections.OrderedDict((k, [0, 0]) for k in (
        "held-out parameter values", "reserved compositions of training families", "rules with a held-out family"))
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            k = kinds[kind(row["task_id"], held)]
            k[0] += 1
            k[1] += bool(row["exact"])
    return {name: k for name, k in kinds.items() if k[0]}


if __name__ == "__main__":
    main(sys.argv[1:])
