#!/usr/bin/env bash
# What storing a record's time costs 1 writer -> 1 stream (README.md here).
#
# usage: bash benches/experiments/record_size/run.sh [ROUNDS]   (default 4)
#
# Builds the `zerocopy` bench of BASE as it is (`base`) and with each patch
# here applied (in throwaway worktrees, one shared target directory), then
# runs the 1 -> 1 rows `memlog_writer_ticking_visit/u64` and `disruptor/u64`
# of every build in turn, ROUNDS times. It prints, for each build, the
# median time and two ratios of rates, each paired within one round or one
# process so that the machine's drift cancels: against `base` in the same
# round, and against the disruptor row of the same bench process.
set -euo pipefail

BASE=4e7cf7969d7378a9b56489fc396021245fe4342b
ROUNDS=${1:-4}
VARIANTS=(base time8 time8_no_stamp stamp_payload payload_only)
FILTER='zc_stream_1w1r/(memlog_writer_ticking_visit|disruptor)/u64'

if ! [[ $ROUNDS =~ ^[1-9][0-9]*$ ]]; then
    echo "ROUNDS must be a positive number, not '$ROUNDS'" >&2
    exit 2
fi

here=$(cd -- "$(dirname -- "$0")" >/dev/null && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
if ! git -C "$repo" cat-file -e "$BASE^{commit}" 2>/dev/null; then
    echo "commit $BASE is not in this clone (a shallow clone?): fetch the full history" >&2
    exit 2
fi
work=$(mktemp -d)
cleanup() {
    for v in "${VARIANTS[@]}"; do
        git -C "$repo" worktree remove --force "$work/$v" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# The builds share one target directory, where each overwrites the last one's
# binary: each is copied out as soon as it is built, and checked distinct below.
export CARGO_TARGET_DIR="$work/target"
for v in "${VARIANTS[@]}"; do
    git -C "$repo" worktree add --quiet --detach "$work/$v" "$BASE"
    if [ "$v" != base ]; then
        git -C "$work/$v" apply "$here/$v.patch"
    fi
    echo "building $v" >&2
    # Once for the compiler's messages, once (built already) for the path.
    (cd "$work/$v" && cargo bench -p memlog-benches --bench zerocopy --no-run --quiet)
    exe=$(cd "$work/$v" && cargo bench -p memlog-benches --bench zerocopy --no-run \
        --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "zerocopy":
        print(m["executable"])')
    cp "$exe" "$work/bench-$v"
done
if [ "$(sha256sum "$work"/bench-* | cut -d' ' -f1 | sort -u | wc -l)" -ne "${#VARIANTS[@]}" ]; then
    echo "two builds produced the same binary: a patch did not take effect" >&2
    exit 1
fi

for r in $(seq "$ROUNDS"); do
    for v in "${VARIANTS[@]}"; do
        echo "round $r: $v" >&2
        # --discard-baseline: no "change:" block with a time of its own.
        (cd "$work/$v" && "$work/bench-$v" --bench --warm-up-time 0.5 \
            --measurement-time 2 --discard-baseline "$FILTER" 2>&1) |
            sed "s|^|$r $v |"
    done
done | python3 -c '
import re, statistics, sys
rounds, variants = int(sys.argv[1]), sys.argv[2:]
unit = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3}
memlog, disruptor = {}, {}  # (round, build) -> ms
name = None
for line in sys.stdin:
    r, v, rest = line.rstrip("\n").split(" ", 2)
    m = re.match(r"^(zc_stream_1w1r/\S+)", rest)
    if m:
        name = m.group(1)
    t = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+)", rest)
    if t and name:
        rows = disruptor if name.startswith("zc_stream_1w1r/disruptor/") else memlog
        rows[(int(r), v)] = float(t.group(1)) * unit[t.group(2)]
        name = None
want = {(r, v) for r in range(1, rounds + 1) for v in variants}
for rows, what in ((memlog, "memlog"), (disruptor, "disruptor")):
    if set(rows) != want:
        sys.exit("missing %s runs: %s" % (what, sorted(want - set(rows))))

def spread(xs):
    return "%.2f (%.2f-%.2f)" % (statistics.median(xs), min(xs), max(xs))

print("ms per 1 M records; ratios of rates, median (range) of the %d pairs" % rounds)
print("%-15s %-36s %-20s %s" % ("build", "memlog ms, round by round", "vs base, same round", "vs the disruptor, same process"))
for v in variants:
    ms = [memlog[(r, v)] for r in range(1, rounds + 1)]
    vs_base = [memlog[(r, "base")] / memlog[(r, v)] for r in range(1, rounds + 1)]
    vs_d = [disruptor[(r, v)] / memlog[(r, v)] for r in range(1, rounds + 1)]
    print("%-15s %-36s %-20s %s" % (v, " ".join("%.2f" % x for x in ms), spread(vs_base), spread(vs_d)))
ds = sorted(disruptor.values())
print("disruptor (u64), all %d runs: median %.2f ms, %.2f-%.2f" % (len(ds), statistics.median(ds), ds[0], ds[-1]))
' "$ROUNDS" "${VARIANTS[@]}"
