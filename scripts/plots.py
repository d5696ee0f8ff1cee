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


TERMINATOR_MARKERS = ["^", "s", "D", "v", "P", "X"]  # a terminator's points; "o" (filled) without one
TERMINATORS = []  # every terminator of the report, so a terminator has one marker in every plot


def line_style(name, names):
    """One colour per policy (the same in every plot); without a terminator a solid line and
    filled circles, with one a dashed line and hollow markers of that terminator's own shape,
    so the two can be told apart where a line has a single point. When every line is of one
    policy, one colour per terminator instead."""
    policy, _, terminator = name.partition(" + ")
    if len({n.split(" + ")[0] for n in names}) == 1:
        keys = sorted(names)
        colour = plt.get_cmap("tab10" if len(keys) <= 10 else "tab20")(keys.index(name))
    else:
        policies = POLICIES if policy in POLICIES else sorted({n.split(" + ")[0] for n in names})
        colour = plt.get_cmap("tab10" if len(policies) <= 10 else "tab20")(policies.index(policy))
    if not terminator:
        return {"color": colour, "linestyle": "-", "marker": "o"}
    if terminator not in TERMINATORS:
        TERMINATORS.append(terminator)
    marker = TERMINATOR_MARKERS[TERMINATORS.index(terminator) % len(TERMINATOR_MARKERS)]
    return {"color": colour, "linestyle": "--", "marker": marker, "markerfacecolor": "none", "markersize": 8}


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
    """Accuracy by needle depth (ten bins) and context length, one heatmap per policy and
    terminator; each cell shows its sample count, and a bin no sample fell in says so."""
    by = defaultdict(dict)
    for r in rows:
        by[label(r)][(int(r["depth_bin"].split("-")[0]), int(r["context_length"]))] = (
            float(r["accuracy"]), int(r["samples"]))
    bins = list(range(0, 100, 10))
    for name, cells in sorted(by.items()):
        lengths = sorted({n for _, n in cells})
        grid = [[cells.get((d, n), (float("nan"), 0))[0] for n in lengths] for d in bins]
        fig, ax = plt.subplots(figsize=(1.6 + 1.2 * len(lengths), 4.8))
        cmap = plt.get_cmap("RdYlGn").copy()
        cmap.set_bad("#e6e6e6")
        im = ax.imshow(grid, vmin=0, vmax=100, cmap=cmap, aspect="auto")
        for i, d in enumerate(bins):
            for j, n in enumerate(lengths):
                accuracy, count = cells.get((d, n), (float("nan"), 0))
                text = f"{accuracy:.0f}\nn={count}" if count else "no\nsample"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color="black" if count else "#777777")
        ax.set_xticks(range(len(lengths)), [f"{n // 1024}K" for n in lengths])
        ax.set_yticks(range(len(bins)), [f"{d}-{d + 10}%" for d in bins])
        ax.set_xlabel("context length (tokens)")
        ax.set_ylabel("needle depth")
        total = sum(c for _, c in cells.values())
        ax.set_title(f"Needle accuracy (%): {name}\n{total} samples; n per cell"
                     " (a task's depth_spread \"even\" spreads a cell's samples over the depths)", fontsize=9)
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
    "attended": ("tokens attended %", "context tokens attended (%, log scale)", True, "context tokens attended"),
    "recall": ("attention recall %", "dense attention mass visited (%)", False, "dense attention mass visited"),
    "error": ("output error %", "attention output error against dense (%)", False, "attention output error"),
}


def tradeoff(rows, out, x_axis="attended"):
    # One point per policy label and terminator (mean over context lengths). A plugin run
    # at several budgets (labels) is one line through them, named by the plugin and each
    # point by its label; a plugin with one label is named by that label, as in the other
    # plots.
    column, xlabel, log, what = TRADEOFF_X[x_axis]
    acc = defaultdict(list)
    labels_of = defaultdict(set)
    for r in rows:
        acc[(r["plugin"], r["terminator"], r["policy"])].append((float(r[column]), float(r["accuracy"])))
        labels_of[r["plugin"]].add(r["policy"])
    if not acc:
        return
    lines = defaultdict(list)
    for (plugin, term, policy), pts in acc.items():
        x = sum(p[0] for p in pts) / len(pts)
        y = sum(p[1] for p in pts) / len(pts)
        name = plugin if len(labels_of[plugin]) > 1 else policy
        lines[name if term == "none" else f"{name} + {term}"].append((x, y, policy))
    for pts in lines.values():
        pts.sort()
    fig, ax = line_figure(lines, f"Accuracy against {what} (mean over context lengths)", xlabel, "accuracy (%)")
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
    TERMINATORS.extend(sorted({r["terminator"] for r in efficiency} - {"none"}))
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
