#!/usr/bin/env bash
# What a record's size costs 1 writer -> 1 stream (README.md here).
#
# usage: bash benches/experiments/record_size/run.sh [ROUNDS]   (default 4)
#
# Builds the `zerocopy` bench of BASE as it is and with each patch here
# applied (in throwaway worktrees, one shared target directory), then runs
# the 1 -> 1 rows `memlog_writer_ticking_visit/u64` and `disruptor/u64` of
# every build in turn, ROUNDS times, and prints the medians. The disruptor
# row is the same code in every build: its figures are pooled.
set -euo pipefail

BASE=4e7cf7969d7378a9b56489fc396021245fe4342b
ROUNDS=${1:-4}
VARIANTS=(current time8 time8_no_stamp stamp_payload payload_only)
FILTER='zc_stream_1w1r/(memlog_writer_ticking_visit|disruptor)/u64'

here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
work=$(mktemp -d)
cleanup() {
    for v in "${VARIANTS[@]}"; do
        git -C "$repo" worktree remove --force "$work/$v" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

export CARGO_TARGET_DIR="$work/target"
for v in "${VARIANTS[@]}"; do
    git -C "$repo" worktree add --quiet --detach "$work/$v" "$BASE"
    if [ "$v" != current ]; then
        git -C "$work/$v" apply "$here/$v.patch"
    fi
    echo "building $v" >&2
    exe=$(cd "$work/$v" && cargo bench -p memlog-benches --bench zerocopy --no-run \
        --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "zerocopy":
        print(m["executable"])')
    cp "$exe" "$work/bench-$v"
done

for r in $(seq "$ROUNDS"); do
    for v in "${VARIANTS[@]}"; do
        echo "round $r: $v" >&2
        (cd "$work/$v" && "$work/bench-$v" --bench --warm-up-time 0.5 \
            --measurement-time 2 "$FILTER" 2>&1) | sed "s|^|$v |"
    done
done | python3 -c '
import re, statistics, sys
rows = {}
name = None
for line in sys.stdin:
    variant, _, rest = line.rstrip("\n").partition(" ")
    m = re.match(r"^(zc_stream_1w1r/\S+)", rest)
    if m:
        name = m.group(1)
    t = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+)", rest)
    if t and name:
        ms = float(t.group(1)) * {"ms": 1, "s": 1e3, "us": 1e-3, "µs": 1e-3}[t.group(2)]
        key = "disruptor" if name.startswith("zc_stream_1w1r/disruptor/") else variant
        rows.setdefault(key, []).append(ms)
        name = None
ds = rows.pop("disruptor")
d = statistics.median(ds)
print("%-16s %19s %5s  %s" % ("build", "ms per 1 M, median", "runs", "rate vs the disruptor"))
for v, xs in rows.items():
    m = statistics.median(xs)
    runs = ", ".join("%.1f" % x for x in xs)
    print("%-16s %19.2f %5d  %.2fx   (%s)" % (v, m, len(xs), d / m, runs))
print("%-16s %19.2f %5d  (%s)" % ("disruptor (u64)", d, len(ds), ", ".join("%.1f" % x for x in ds)))
'
