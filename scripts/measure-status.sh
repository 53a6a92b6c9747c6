#!/usr/bin/env bash
# Times `status --json` end to end (process start to exit) on an embedded store
# holding N rollouts (default 1000). Usage: scripts/measure-status.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
cargo build --release -q
bin=target/release/rollout-tui
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for i in $(seq 1 "$n"); do
  "$bin" --data-dir "$dir" --actor measure create "r$i" --version "1.$i.0" --canary-user "u$i@example.com" >/dev/null
done
"$bin" --data-dir "$dir" status --json >/dev/null # warm the page cache
if command -v hyperfine >/dev/null 2>&1; then
  hyperfine --warmup 3 --runs 30 "$bin --data-dir $dir status --json"
else
  runs=30
  start=$(date +%s%N)
  for _ in $(seq 1 $runs); do "$bin" --data-dir "$dir" status --json >/dev/null; done
  end=$(date +%s%N)
  echo "status --json on $n rollouts: mean $(( (end - start) / runs / 1000000 )) ms over $runs runs"
fi
echo "output size: $("$bin" --data-dir "$dir" status --json | wc -c) bytes"
