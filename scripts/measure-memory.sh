#!/usr/bin/env bash
# Memory over a long run: `demo --speed 3600 --auto current` (an hour of simulated time each
# second, auto-progression driving) untouched in a 200x60 tmux pane for SECONDS (default
# 600: ten simulated hours). Prints RSS every minute, then the end against the first minute.
#   scripts/measure-memory.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
cargo build --release -q
bin="$PWD/target/release/rollout-tui"
work=$(mktemp -d)
sock="mem-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true; rm -rf "$work"' EXIT
tmux -L "$sock" new-session -d -s mem -x 200 -y 60 \
  "sh -c 'echo \$\$ > $work/pid; exec $bin --data-dir $work/data demo --speed 3600 --auto current'"
for _ in $(seq 1 50); do [ -s "$work/pid" ] && break; sleep 0.1; done
pid=$(cat "$work/pid")
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
first=""
for t in $(seq 1 "$secs"); do
  sleep 1
  if [ $((t % 60)) -eq 0 ]; then
    r=$(rss)
    [ -z "$first" ] && first=$r
    awk -v t="$t" -v r="$r" 'BEGIN { printf "after %4ds: RSS %.1f MiB\n", t, r / 1024 }'
  fi
done
last=$(rss)
awk -v a="$first" -v b="$last" 'BEGIN { printf "end vs first minute: %+.1f %%\n", (b - a) * 100 / a }'
