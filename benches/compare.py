#!/usr/bin/env python3
"""Before/after: criterion rows of two commits, run in turn on one machine.

usage: python3 benches/compare.py BASE [--head REV] [--rounds N]
           [--ref ROW] [--same-benches] BENCH:FILTER [BENCH:FILTER ...]

Builds the named benches of the memlog-benches package at BASE and at HEAD
(or --head), each in a throwaway worktree with one shared target directory,
then runs every BENCH:FILTER of both builds in turn, N rounds (default 3),
each round starting with the other build. It prints, for every row, the
median time of each build and the ratio of times HEAD / BASE paired within
a round (median and range over the rounds), which cancels most of the
machine's slow drift. With --ref ROW (a row's full name, for example
write_1t/baseline_fetch_add_store/u64), every row is also divided by that
row's time in the same bench process: a ratio that a shared, noisy machine
moves less than either time. With --same-benches, BASE is built with HEAD's
benches/ directory (the same bench code on both sides; for a bench that
BASE does not have yet).

Example (the write, read, stream and zerocopy benches, quickly):
  python3 benches/compare.py 92d2ebf write:write_1t read:read_1t \
      stream:stream_1w1r zerocopy:zc_stream_1w1r
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

UNIT = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}


def sh(*args, **kw):
    return subprocess.run(args, check=True, text=True, **kw)


def build(repo, rev, work, benches, benches_from=None):
    """Checks out `rev` in a worktree under `work` (with the benches/ of
    `benches_from` if given), builds `benches`; returns the tree and
    {bench: (tree, copied executable)}."""
    tree = os.path.join(work, "tree-" + rev.replace("/", "_"))
    sh("git", "-C", repo, "worktree", "add", "--quiet", "--detach", tree, rev)
    if benches_from:
        shutil.rmtree(os.path.join(tree, "benches"))
        sh("git", "-C", repo, "worktree", "add", "--quiet", "--detach",
           tree + "-benches", benches_from)
        shutil.copytree(os.path.join(tree + "-benches", "benches"), os.path.join(tree, "benches"))
        sh("git", "-C", repo, "worktree", "remove", "--force", tree + "-benches")
    exes = {}
    for bench in benches:
        print(f"building {bench} at {rev}", file=sys.stderr)
        out = sh("cargo", "bench", "-p", "memlog-benches", "--bench", bench, "--no-run",
                 "--message-format=json", cwd=tree, stdout=subprocess.PIPE).stdout
        exe = None
        for line in out.splitlines():
            m = json.loads(line)
            if m.get("reason") == "compiler-artifact" and m.get("executable") \
                    and m["target"]["name"] == bench:
                exe = m["executable"]
        if exe is None:
            sys.exit(f"cargo named no {bench} executable at {rev}")
        copy = os.path.join(work, f"{bench}-{rev.replace('/', '_')}")
        shutil.copy(exe, copy)
        exes[bench] = (tree, copy)
    return tree, exes


def run(tree, exe, filt):
    """Runs one criterion filter; returns {row: ns}."""
    out = sh(exe, "--bench", "--warm-up-time", "0.5", "--measurement-time", "2",
             "--discard-baseline", filt, cwd=tree, stdout=subprocess.PIPE).stdout
    rows, name = {}, None
    for line in out.splitlines():
        m = re.match(r"^(\S+/\S+)", line)
        if m and not line.startswith(" "):
            name = m.group(1)
        t = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+)", line)
        if t and name:
            rows[name] = float(t.group(1)) * UNIT[t.group(2)]
            name = None
    if not rows:
        sys.exit(f"no criterion rows for filter {filt!r}:\n{out}")
    return rows


def spread(xs):
    return "%.2f (%.2f-%.2f)" % (statistics.median(xs), min(xs), max(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("base")
    ap.add_argument("--head", default="HEAD")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ref")
    ap.add_argument("--same-benches", action="store_true")
    ap.add_argument("rows", nargs="+", metavar="BENCH:FILTER")
    a = ap.parse_args()
    if a.rounds < 1:
        sys.exit("--rounds must be at least 1")
    specs = []
    for spec in a.rows:
        bench, sep, filt = spec.partition(":")
        if not sep or not bench or not filt:
            sys.exit(f"not BENCH:FILTER: {spec!r}")
        specs.append((bench, filt))
    repo = sh("git", "rev-parse", "--show-toplevel", stdout=subprocess.PIPE).stdout.strip()
    revs = {}
    for label, rev in (("base", a.base), ("head", a.head)):
        revs[label] = sh("git", "-C", repo, "rev-parse", "--short", rev + "^{commit}",
                         stdout=subprocess.PIPE).stdout.strip()
    work = tempfile.mkdtemp()
    trees = []
    try:
        os.environ["CARGO_TARGET_DIR"] = os.path.join(work, "target")
        builds = {}
        for label in ("base", "head"):
            same = revs["head"] if a.same_benches and label == "base" else None
            tree, exes = build(repo, revs[label], work, {b for b, _ in specs}, same)
            trees.append(tree)
            builds[label] = exes
        times = {}  # (round, label, row) -> ns
        refs = {}  # (round, label, bench, filter) -> ref row ns, when in that run
        for r in range(a.rounds):
            order = ("base", "head") if r % 2 == 0 else ("head", "base")
            for bench, filt in specs:
                for label in order:
                    print(f"round {r + 1}: {label} {bench} {filt}", file=sys.stderr)
                    tree, exe = builds[label][bench]
                    rows = run(tree, exe, filt)
                    for row, ns in rows.items():
                        times[(r, label, row)] = ns
                        if a.ref and a.ref in rows:
                            refs[(r, label, row)] = rows[a.ref]
        rows = sorted({row for (_, _, row) in times})
        print(f"base {revs['base']}, head {revs['head']}, {a.rounds} rounds; times in ns "
              "(median of rounds); ratios of times, paired, median (range)")
        print("| row | base | head | head / base |" + (" base / ref | head / ref |" if a.ref else ""))
        print("|---|---:|---:|---:|" + ("---:|---:|" if a.ref else ""))
        for row in rows:
            rs = [r for r in range(a.rounds) if (r, "base", row) in times and (r, "head", row) in times]
            if not rs:
                continue
            b = [times[(r, "base", row)] for r in rs]
            h = [times[(r, "head", row)] for r in rs]
            line = "| %s | %.1f | %.1f | %s |" % (row, statistics.median(b), statistics.median(h),
                                                  spread([y / x for x, y in zip(b, h)]))
            if a.ref:
                for label in ("base", "head"):
                    xs = [times[(r, label, row)] / refs[(r, label, row)] for r in rs
                          if (r, label, row) in refs]
                    line += " %s |" % (spread(xs) if xs else "-")
            print(line)
    finally:
        for tree in trees:
            subprocess.run(["git", "-C", repo, "worktree", "remove", "--force", tree])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
