#!/usr/bin/env bash
# What storing a record's time costs 1 writer -> 1 stream (README.md here).
#
# usage: bash benches/experiments/record_size/run.sh [ROUNDS]   (default 4)
#
# Builds the `zerocopy` bench of BASE as it is (`base`) and with each patch
# here applied (in throwaway worktrees, one shared target directory), then
# runs the 1 -> 1 rows `memlog_writer_ticking_visit/u64` and `disruptor/u64`
# of every build in turn, ROUNDS times, each round starting one build later
# than the one before. It prints, for each build, its times and those of the
# disruptor row in the same bench process, round by round, and two ratios
# of rates, each paired to reduce the machine's slow drift: against `base`
# in the same round, and against the disruptor row of the same process.
set -euo pipefail

BASE=4e7cf7969d7378a9b56489fc396021245fe4342b
ROUNDS=${1:-4}
VARIANTS=(base time8 time8_no_stamp stamp_payload stamp_payload_base_clock payload_only)
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
    if [ -z "$exe" ]; then
        echo "cargo named no zerocopy bench executable for $v" >&2
        exit 1
    fi
    cp "$exe" "$work/bench-$v"
done
if [ "$(sha256sum "$work"/bench-* | cut -d' ' -f1 | sort -u | wc -l)" -ne "${#VARIANTS[@]}" ]; then
    echo "two builds produced the same binary: a patch did not take effect" >&2
    exit 1
fi

n=${#VARIANTS[@]}
for r in $(seq "$ROUNDS"); do
    for k in $(seq 0 $((n - 1))); do
        v=${VARIANTS[$(((r - 1 + k) % n))]}
        echo "round $r: $v" >&2
        # --discard-baseline: no "change:" block with a time of its own.
        # criterion's results go to stdout; a panic stays on the terminal.
        (cd "$work/$v" && "$work/bench-$v" --bench --warm-up-time 0.5 \
            --measurement-time 2 --discard-baseline "$FILTER") |
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

rs = range(1, rounds + 1)
print("ms per 1 M records, round by round; ratios of rates, median (range) of the %d pairs" % rounds)
for v in variants:
    ms = [memlog[(r, v)] for r in rs]
    print("%s: median %.2f ms" % (v, statistics.median(ms)))
    print("  memlog     " + " ".join("%6.2f" % x for x in ms))
    print("  disruptor  " + " ".join("%6.2f" % disruptor[(r, v)] for r in rs))
    print("  vs base, same round: %s; vs the disruptor, same process: %s" % (
        spread([memlog[(r, "base")] / memlog[(r, v)] for r in rs]),
        spread([disruptor[(r, v)] / memlog[(r, v)] for r in rs])))
ds = sorted(disruptor.values())
print("disruptor (u64), all %d runs: median %.2f ms, %.2f-%.2f" % (len(ds), statistics.median(ds), ds[0], ds[-1]))
' "$ROUNDS" "${VARIANTS[@]}"
