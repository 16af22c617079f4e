#!/usr/bin/env python3
"""Reads criterion's results and writes benches/results.svg and a Markdown
table of ratios against memlog. Standard library only.

    python3 benches/plot.py [target/criterion] [benches/results.svg]

For each group and payload, the reference is the `memlog` benchmark with the
same payload (u64 or bytes), or the group's u64 memlog result when there is no
same-payload one. The ratio shown is contender time / memlog time: above 1
means memlog is faster by that factor.
"""
import glob
import json
import math
import os
import sys
from xml.sax.saxutils import escape

ROOT = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "results.svg")
GROUP_ORDER = ["write_1t", "write_batch", "read_1t", "read_batch", "read_concurrent",
               "stream_1w1r", "stream_2w2r", "stream_4w4r"]


def load():
    rows = {}
    for est in glob.glob(os.path.join(ROOT, "**", "new", "estimates.json"), recursive=True):
        d = os.path.dirname(est)
        try:
            with open(os.path.join(d, "benchmark.json")) as f:
                bench = json.load(f)
            with open(est) as f:
                e = json.load(f)
        except (OSError, ValueError):
            continue
        group, func, param = bench["group_id"], bench.get("function_id"), bench.get("value_str")
        if group not in GROUP_ORDER or func is None:
            continue
        elems = 1
        tp = bench.get("throughput") or {}
        if "Elements" in tp:
            elems = tp["Elements"]
        ns = e["mean"]["point_estimate"]
        rows[(group, func, param or "")] = (ns, elems)
    return rows


def table(rows):
    out = []
    for g in GROUP_ORDER:
        keys = sorted(k for k in rows if k[0] == g)
        for (_, func, param) in keys:
            ns, elems = rows[(g, func, param)]
            ref = rows.get((g, "memlog", param)) or rows.get((g, "memlog", "u64"))
            ratio = ns / ref[0] if ref else float("nan")
            per = ns / elems
            rate = elems / ns * 1e9
            out.append((g, func, param, per, rate, ratio))
    return out


def svg(entries):
    bar_h, gap, left, width = 16, 4, 330, 520
    height = 40 + len(entries) * (bar_h + gap) + 30
    lo, hi = math.log10(0.1), math.log10(100.0)

    def x(r):
        r = min(max(r, 0.1), 100.0)
        return left + (math.log10(r) - lo) / (hi - lo) * width

    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
         'font-family="sans-serif" font-size="11">',
         '<rect width="100%" height="100%" fill="white"/>',
         f'<text x="10" y="18" font-size="13" font-weight="bold">memlog benches: contender time / '
         'memlog time (log scale; &gt;1 = memlog faster)</text>']
    for t in (0.1, 0.3, 1, 3, 10, 30, 100):
        xx = x(t)
        s.append(f'<line x1="{xx:.1f}" y1="30" x2="{xx:.1f}" y2="{height - 25}" '
                 f'stroke="{"#000" if t == 1 else "#ddd"}"/>')
        s.append(f'<text x="{xx:.1f}" y="{height - 10}" text-anchor="middle">{t}×</text>')
    y = 36
    for (g, func, param, per, rate, ratio) in entries:
        label = escape(f"{g} / {func} / {param}")
        color = "#2b6cb0" if func.startswith("memlog") else "#dd6b20"
        if func.startswith("baseline"):
            color = "#718096"
        s.append(f'<text x="{left - 6}" y="{y + bar_h - 4}" text-anchor="end">{label}</text>')
        if not math.isnan(ratio):
            x0, x1 = sorted((x(1), x(ratio)))
            s.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" height="{bar_h}" '
                     f'fill="{color}"/>')
            s.append(f'<text x="{max(x(1), x(ratio)) + 4:.1f}" y="{y + bar_h - 4}">{ratio:.2f}×</text>')
        y += bar_h + gap
    s.append("</svg>")
    return "\n".join(s)


def fmt_rate(r):
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if r >= div:
            return f"{r / div:.2f} {unit}"
    return f"{r:.0f}"


def main():
    rows = load()
    if not rows:
        sys.exit(f"no criterion results under {ROOT}")
    entries = table(rows)
    with open(OUT, "w") as f:
        f.write(svg(entries))
    print("| group | contender | payload | ns/record | records/s | time / memlog |")
    print("|---|---|---|---:|---:|---:|")
    for (g, func, param, per, rate, ratio) in entries:
        print(f"| {g} | {func} | {param} | {per:.1f} | {fmt_rate(rate)} | {ratio:.2f} |")
    print(f"\nwrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
