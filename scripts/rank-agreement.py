#!/usr/bin/env python3
"""Policy rankings of the same tables on two models, and how far they agree.

    python3 scripts/rank-agreement.py RUNS   # RUNS/{mechanistic,trained}/TABLE/results.json

For each table: every (policy, terminator) entry's mean accuracy over the table's cells
(tasks x lengths), over all its tasks and again over the tasks dense answers on both
models (a mean of at least 50 on each: where the trained model cannot answer, every
policy ties at 0 there and the ranking says nothing about the policies) and mean decode speedup over dense (tokens a second against the dense
cell of the same task and length), on each model; the entries ranked by accuracy; and
Kendall's tau-b between the two rankings (ties counted as ties). Pairs are also summed
over the tables (only pairs within one table are compared) for one pooled tau-b.
Markdown on stdout. Reads results only: nothing here is on a run's measuring path.
"""
import json
import math
import os
import sys
from collections import defaultdict

MODELS = ("mechanistic", "trained")


def load(path):
    return json.load(open(path))["cells"]


def answerable(cells):
    """Tasks whose dense cells average at least 50."""
    by_task = defaultdict(list)
    for c in cells:
        if c["policy"] == "dense" and c["terminator"] == "none":
            by_task[c["task"]].append(c["metrics"]["accuracy"])
    return {t for t, v in by_task.items() if sum(v) / len(v) >= 50}


def entries(cells, tasks=None):
    cells = [c for c in cells if tasks is None or c["task"] in tasks]
    dense = {(c["task"], c["context_length"]): c["metrics"].get("decode_tokens_per_s")
             for c in cells if c["policy"] == "dense" and c["terminator"] == "none"}
    acc, speed = defaultdict(list), defaultdict(list)
    for c in cells:
        key = c["policy"] if c["terminator"] == "none" else f'{c["policy"]} + {c["terminator"]}'
        m = c["metrics"]
        acc[key].append(m["accuracy"])
        base = dense.get((c["task"], c["context_length"]))
        if base and m.get("decode_tokens_per_s"):
            speed[key].append(m["decode_tokens_per_s"] / base)
    return {k: (sum(v) / len(v), math.exp(sum(map(math.log, speed[k])) / len(speed[k])) if speed[k] else float("nan"))
            for k, v in acc.items()}


def pairs(a, b):
    """Concordant, discordant, ties only in a, ties only in b (tau-b's counts)."""
    keys = sorted(a)
    n_c = n_d = t_a = t_b = 0
    for i, x in enumerate(keys):
        for y in keys[i + 1:]:
            da, db = a[x] - a[y], b[x] - b[y]
            if da == 0 and db == 0:
                continue
            if da == 0:
                t_a += 1
            elif db == 0:
                t_b += 1
            elif (da > 0) == (db > 0):
                n_c += 1
            else:
                n_d += 1
    return n_c, n_d, t_a, t_b


def tau_b(n_c, n_d, t_a, t_b):
    den = math.sqrt((n_c + n_d + t_a) * (n_c + n_d + t_b))
    return (n_c - n_d) / den if den else float("nan")


def rank(scores):
    order = sorted(scores, key=lambda k: -scores[k])
    return {k: 1 + sum(1 for o in order if scores[o] > scores[k]) for k in order}


def table(e, total):
    keys = [k for k in e[MODELS[0]] if k in e[MODELS[1]]]
    acc = {m: {k: round(e[m][k][0], 1) for k in keys} for m in MODELS}
    ranks = {m: rank(acc[m]) for m in MODELS}
    counts = pairs(acc[MODELS[0]], acc[MODELS[1]])
    print("| policy | mechanistic accuracy | rank | speedup | trained accuracy | rank | speedup |")
    print("|---|---|---|---|---|---|---|")
    for k in sorted(keys, key=lambda k: ranks[MODELS[0]][k]):
        row = [k]
        for m in MODELS:
            row += [f"{acc[m][k]:.1f}", str(ranks[m][k]), f"{e[m][k][1]:.2f}x"]
        print("| " + " | ".join(row) + " |")
    print(f"\nKendall tau-b {tau_b(*counts):.2f} ({counts[0]} pairs in the same order, {counts[1]} reversed, "
          f"{counts[2]} tied on the mechanistic model only, {counts[3]} on the trained only)\n")
    for i in range(4):
        total[i] += counts[i]


def pooled(label, total):
    print(f"- {label}: Kendall tau-b {tau_b(*total):.2f}: {total[0]} pairs in the same order, {total[1]} reversed, "
          f"{total[2] + total[3]} tied on one model only")


def main(runs):
    tables = sorted(t for t in os.listdir(os.path.join(runs, MODELS[0]))
                    if os.path.exists(os.path.join(runs, MODELS[1], t, "results.json")))
    every, common = [0, 0, 0, 0], [0, 0, 0, 0]
    print("# Policy rankings on the two models\n")
    print("Accuracy is the mean over the table's cells (tasks x 4K, 8K, 16K); speedup is the geometric")
    print("mean of decode tokens a second over dense's in the same task and length; rank 1 is the most")
    print("accurate (ties share a rank). tau-b is Kendall's, between the two accuracy rankings. Each")
    print("table is ranked over all its tasks, then over the tasks dense answers on both models")
    print("(a mean of 50 or more on each).\n")
    for t in tables:
        cells = {m: load(os.path.join(runs, m, t, "results.json")) for m in MODELS}
        print(f"## {t}\n\nAll tasks:\n")
        table({m: entries(cells[m]) for m in MODELS}, every)
        both = sorted(answerable(cells[MODELS[0]]) & answerable(cells[MODELS[1]]))
        if both:
            print(f"Tasks dense answers on both models ({', '.join(both)}):\n")
            table({m: entries(cells[m], set(both)) for m in MODELS}, common)
        else:
            print("No task that dense answers on both models.\n")
    print("## Pooled over the tables (pairs compared within a table)\n")
    pooled("all tasks", every)
    pooled("tasks dense answers on both", common)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
