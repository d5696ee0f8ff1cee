#!/usr/bin/env python3
"""Plots of an attnbench report folder (written by `attnbench report`), all in one style.

Reads efficiency.csv, needles.csv and layers.csv from REPORT_DIR and writes PNGs into
REPORT_DIR/plots/: a needle heatmap (depth x context length) per policy and terminator,
decode throughput against context length, accuracy against the share of tokens attended
(the trade-off curve), and blocks skipped per layer. Python is only for plots; every
number comes from the C++ harness.

    python3 scripts/plots.py REPORT_DIR [--x attended|recall|error]

--x picks the trade-off curve's x axis: the share of context tokens attended (default),
or, for a run with metrics.fidelity, the share of dense attention mass the policy visited
(recall) or its output's relative error against dense attention (error), from
fidelity.csv.
"""
import argparse
import csv
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

STYLE = {
    "figure.figsize": (7.0, 4.5),
    "figure.dpi": 120,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 8,
    "legend.frameon": False,
}


def read(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def label(row):
    return row["policy"] if row["terminator"] == "none" else f'{row["policy"]} + {row["terminator"]}'


POLICIES = []  # every policy label of the report, so a policy has one colour in every plot


def line_style(name, names):
    """One colour per policy (the same in every plot), solid without a terminator and dashed
    with one; when every line is of one policy, one colour per terminator instead."""
    if len({n.split(" + ")[0] for n in names}) == 1:
        keys = sorted(names)
        colour = plt.get_cmap("tab10" if len(keys) <= 10 else "tab20")(keys.index(name))
    else:
        policies = POLICIES or sorted({n.split(" + ")[0] for n in names})
        colour = plt.get_cmap("tab10" if len(policies) <= 10 else "tab20")(policies.index(name.split(" + ")[0]))
    return {"color": colour, "linestyle": "--" if " + " in name else "-", "marker": "o"}


def line_figure(lines, title, xlabel, ylabel):
    """A wide figure with one line per entry of `lines` (name -> sorted (x, y, ...) points)."""
    fig, ax = plt.subplots(figsize=(9.0, 4.5))
    for name, pts in sorted(lines.items()):
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=name, **line_style(name, lines))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig, ax


def outside_legend(ax):
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)


def save(fig, out, name):
    fig.tight_layout()
    fig.savefig(os.path.join(out, name))
    plt.close(fig)


def needle_heatmaps(rows, out):
    by = defaultdict(dict)
    for r in rows:
        by[label(r)][(r["depth_bin"], int(r["context_length"]))] = float(r["accuracy"])
    for name, cells in sorted(by.items()):
        depths = sorted({d for d, _ in cells}, key=lambda d: int(d.split("-")[0]))
        lengths = sorted({n for _, n in cells})
        grid = [[cells.get((d, n), float("nan")) for n in lengths] for d in depths]
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(lengths), 4.5))
        im = ax.imshow(grid, vmin=0, vmax=100, cmap="RdYlGn", aspect="auto")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                if v == v:
                    ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(lengths)), [f"{n // 1024}K" for n in lengths])
        ax.set_yticks(range(len(depths)), [f"{d}%" for d in depths])
        ax.set_xlabel("context length (tokens)")
        ax.set_ylabel("needle depth")
        ax.set_title(f"Needle accuracy (%): {name}")
        ax.grid(False)
        fig.colorbar(im, ax=ax, label="accuracy (%)")
        save(fig, out, "needles-" + name.replace(" + ", "-").replace("/", "_") + ".png")


def throughput(rows, out):
    lines = defaultdict(list)
    for r in rows:
        lines[label(r)].append((int(r["context"]), float(r["decode tok/s"])))
    if not lines:
        return
    for pts in lines.values():
        pts.sort()
    fig, ax = line_figure(lines, "Decode throughput against context length", "context length (tokens)",
                          "decode throughput (tokens/s, log scale)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    lengths = sorted({p[0] for pts in lines.values() for p in pts})
    ax.set_xticks(lengths, [f"{n // 1024}K" for n in lengths])
    outside_legend(ax)
    save(fig, out, "throughput.png")


# The trade-off curve's x axes: column, axis label, log scale, what the title sets accuracy against.
TRADEOFF_X = {
    "attended": ("tokens attended %", "context tokens attended (%, log scale)", True, "the share of the KV cache read"),
    "recall": ("attention recall %", "dense attention mass visited (%)", False, "the attention mass visited"),
    "error": ("output error %", "attention output error against dense (%)", False, "the attention output's error"),
}


def tradeoff(rows, out, x_axis="attended"):
    # One point per policy label and terminator (mean over context lengths); one line per
    # plugin and terminator through its budgets.
    column, xlabel, log, what = TRADEOFF_X[x_axis]
    acc = defaultdict(list)
    for r in rows:
        acc[(r["plugin"], r["terminator"], r["policy"])].append((float(r[column]), float(r["accuracy"])))
    if not acc:
        return
    lines = defaultdict(list)
    for (plugin, term, policy), pts in acc.items():
        x = sum(p[0] for p in pts) / len(pts)
        y = sum(p[1] for p in pts) / len(pts)
        lines[plugin if term == "none" else f"{plugin} + {term}"].append((x, y, policy))
    for pts in lines.values():
        pts.sort()
    fig, ax = line_figure(lines, f"Accuracy against {what}", xlabel, "accuracy (%)")
    for pts in lines.values():
        if len(pts) > 1:
            for i, (x, y, policy) in enumerate(pts):  # labels above and below in turn
                ax.annotate(policy, (x, y), fontsize=7, xytext=(3, 5 if i % 2 == 0 else -11),
                            textcoords="offset points")
    if log:
        ax.set_xscale("log")
        lowest = min(p[0] for v in lines.values() for p in v)
        ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if lowest / 2 <= t]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    ax.set_ylim(-3, 103)
    outside_legend(ax)
    save(fig, out, "tradeoff.png" if x_axis == "attended" else f"tradeoff-{x_axis}.png")


def layers(rows, out):
    lines = defaultdict(list)
    for r in rows:
        lines[label(r)].append((int(r["layer"]), 100 * float(r["blocks_skipped_frac"])))
    lines = {k: sorted(v) for k, v in lines.items() if any(p[1] > 0 for p in v)}
    if not lines:
        return
    fig, ax = line_figure(lines, "Blocks skipped per layer", "layer", "planned blocks skipped (%)")
    ax.set_xticks(sorted({p[0] for pts in lines.values() for p in pts}))
    outside_legend(ax)
    save(fig, out, "layers.png")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", metavar="REPORT_DIR")
    parser.add_argument("--x", choices=sorted(TRADEOFF_X), default="attended", help="the trade-off curve's x axis")
    args = parser.parse_args()
    folder = args.folder
    out = os.path.join(folder, "plots")
    os.makedirs(out, exist_ok=True)
    plt.rcParams.update(STYLE)
    efficiency = read(os.path.join(folder, "efficiency.csv"))
    POLICIES.extend(sorted({r["policy"] for r in efficiency} | {r["plugin"] for r in efficiency}))
    needle_heatmaps(read(os.path.join(folder, "needles.csv")), out)
    throughput(efficiency, out)
    if args.x == "attended":
        tradeoff(efficiency, out)
    else:
        fidelity = os.path.join(folder, "fidelity.csv")
        if not os.path.exists(fidelity):
            sys.exit(f"plots.py: --x {args.x} needs {fidelity}: run with metrics.fidelity true, then attnbench report")
        tradeoff(read(fidelity), out, args.x)
    layers(read(os.path.join(folder, "layers.csv")), out)


if __name__ == "__main__":
    main()
