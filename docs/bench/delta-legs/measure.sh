#!/bin/bash
# Per-base legs of a delta campaign, in turn (issue 17): 128 ONU processes on one PON, 43 on
# V1.0, 43 on V1.1 (derived from V1.0), 42 on V1.2 (its own payload); an 8 MiB V2.0 derived
# from V1.0 (5 % changed), delta packages from V1.0 and V1.1. Runs `olt rollout` with the two
# deltas (per-base), with them and `--delta-policy when-saving`, then with the full image
# only, each RUNS times, and prints each leg's timeline from
# the report (legs.py). Loopback only; the ONUs' flash lives in a temporary directory.
#
#   cargo build --release -p onu -p olt && docs/bench/delta-legs/measure.sh [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
B=$(cd "$here/../../.." && pwd)/target/release
runs=${1:-2}
work=$(mktemp -d)
trap 'pkill -TERM -f "onu run --supervise --count .* --state-dir $work" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
$B/onu image keygen --out lab >/dev/null
$B/onu image build --key lab.key --model LAB-ONU-1 --version V1.0 --size 8388608 --out V1.0.img >/dev/null
$B/onu image build --key lab.key --model LAB-ONU-1 --version V1.1 --derive-from V1.0.img --changed 2 --inserted 0.5 --moved 3 --out V1.1.img >/dev/null
$B/onu image build --key lab.key --model LAB-ONU-1 --version V1.2 --size 8388608 --out V1.2.img >/dev/null
$B/onu image build --key lab.key --model LAB-ONU-1 --version V2.0 --security-version 2 --derive-from V1.0.img --changed 5 --out V2.0.img >/dev/null
$B/onu image delta --from V1.0.img --to V2.0.img --key lab.key --out d10.pkg >/dev/null
$B/onu image delta --from V1.1.img --to V2.0.img --key lab.key --out d11.pkg >/dev/null
ls -l V2.0.img d10.pkg d11.pkg | awk '{print $9": "$5" bytes"}'
rollout() { # TAG, then olt rollout's extra flags
  local tag=$1; shift
  mkdir -p "$work/st-$tag"
  start() { # first-id count golden
    $B/onu run --supervise --count "$2" --base-id "$1" --listen "127.0.0.1:$((42000 + $1))" \
      --olt 127.0.0.1:42999 --group 239.255.0.77:47077 --state-dir "$work/st-$tag" \
      --public-key lab.pub --golden "$3" 2>/dev/null &
  }
  start 1 43 V1.0.img
  start 44 43 V1.1.img
  start 87 42 V1.2.img
  sleep 2
  $B/olt rollout --image V2.0.img --onus 1-128@127.0.0.1:42001 --group 239.255.0.77:47077 \
    --listen 127.0.0.1:42999 --extended --window 256 --report "r-$tag.json" "$@" > "out-$tag.txt" 2> "err-$tag.txt"
  pkill -TERM -f "onu run --supervise --count .* --state-dir $work/st-$tag" || true
  wait 2>/dev/null || true
  rm -rf "$work/st-$tag"
  echo "== $tag: olt rollout $*"
  tail -2 "out-$tag.txt"
  python3 "$here/legs.py" "r-$tag.json"
}
for n in $(seq 1 "$runs"); do
  rollout "deltas-$n" --delta d10.pkg --delta d11.pkg
  rollout "when-saving-$n" --delta d10.pkg --delta d11.pkg --delta-policy when-saving
  rollout "full-$n"
done
