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
import sys


def family(task_id: str) -> str:
    rule = task_id.split("#", 1)[0]
    if "+" in rule:
        return "(compositions)"
    return rule.split("(", 1)[0]


def main(paths):
    if not paths:
        sys.exit("usage: fewshot_families.py EVAL_JSONL...")
    for path in paths:
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
        print(f"{path}\n  {'family':<20} {'rows':>5} {'exact':>8} {'tokens':>8}")
        for name, (rows, exact, acc) in sorted(groups.items()):
            print(f"  {name:<20} {rows:>5} {100 * exact / rows:>7.1f}% {100 * acc / rows:>7.1f}%")


if __name__ == "__main__":
    main(sys.argv[1:])
