#!/usr/bin/env python3
"""Checks that two run folders hold the same results: the same cell ids in the same
order; per cell the same accuracy, blocks planned and visited, decode steps, share of
tokens attended and K/V bytes read; per sample the same prediction, transcript,
references, score and generated tokens; and the same suite summaries. Timings are not
compared. For refactors that must not change behaviour:

    python3 scripts/same-results.py BEFORE_RUN_DIR AFTER_RUN_DIR

Exit 0 when they agree, 1 with the first differences listed when they do not."""
import json
import sys


CELL_FIELDS = ("accuracy", "accuracy_ci95", "samples", "decode_steps", "blocks_planned", "blocks_visited",
               "blocks_skipped_frac", "blocks_skipped_frac_by_layer", "blocks_skipped_frac_by_role",
               "tokens_attended_frac", "kv_bytes_read_k", "kv_bytes_read_v", "kv_bytes_resident")


def strip(summary):
    """A suite summary without what a newer attnbench adds (RULER's task_scores)."""
    if not summary:
        return summary
    out = []
    for row in summary:
        row = dict(row)
        if "lengths" in row:
            row["lengths"] = [{k: v for k, v in l.items() if k != "task_scores"} for l in row["lengths"]]
        out.append(row)
    return out


def load(folder):
    with open(f"{folder}/results.json") as f:
        doc = json.load(f)
    samples = {}
    with open(f"{folder}/samples.jsonl") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                samples[(row["cell"], row["sample"])] = row
    return doc, samples


def main(before, after):
    a, sa = load(before)
    b, sb = load(after)
    problems = []
    ids_a = [c["id"] for c in a["cells"]]
    ids_b = [c["id"] for c in b["cells"]]
    if ids_a != ids_b:
        problems.append(f"cell ids differ: {len(ids_a)} vs {len(ids_b)} cells; first "
                        f"{[x for x in ids_a if x not in ids_b][:3]} / {[x for x in ids_b if x not in ids_a][:3]}")
    metrics_b = {c["id"]: c["metrics"] for c in b["cells"]}
    for c in a["cells"]:
        other = metrics_b.get(c["id"])
        if other is None:
            continue
        for field in CELL_FIELDS:
            if c["metrics"].get(field) != other.get(field):
                problems.append(f"{c['id']}: {field} {c['metrics'].get(field)} vs {other.get(field)}")
    for suite in ("ruler", "longbench"):
        if strip(a.get("summary", {}).get(suite)) != strip(b.get("summary", {}).get(suite)):
            problems.append(f"summary.{suite} differs")
    if set(sa) != set(sb):
        problems.append(f"sample rows differ: {len(sa)} vs {len(sb)}")
    for key, row in sa.items():
        other = sb.get(key)
        if other is None:
            continue
        for field in ("prediction", "transcript", "references", "score", "generated_tokens"):
            if row.get(field) != other.get(field):
                problems.append(f"{key[0]} sample {key[1]}: {field} {row.get(field)!r} vs {other.get(field)!r}")
    for p in problems[:20]:
        print(p)
    print(f"{len(ids_a)} cells, {len(sa)} samples compared: "
          + ("identical cell ids, cell metrics (timings aside), summaries and sample predictions" if not problems else f"{len(problems)} differences"))
    return 0 if not problems else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
