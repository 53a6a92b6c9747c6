#!/usr/bin/env bash
# Idle cost of the cockpit: runs `rollout-tui demo` untouched in a tmux pane for
# SECONDS (default 60) and reports CPU time and bytes written to the terminal.
# Usage: scripts/measure-idle.sh [SECONDS] [extra rollout-tui args...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
shift || true
cargo build --release -q
bin="$PWD/target/release/rollout-tui"
work=$(mktemp -d)
sock="idle-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true; rm -rf "$work"' EXIT
tmux -L "$sock" new-session -d -s idle -x 80 -y 24 \
  "sh -c 'echo \$\$ > $work/pid; exec $bin --data-dir $work/data demo $*'"
tmux -L "$sock" pipe-pane -t idle -O "cat > $work/tty.out"
for _ in $(seq 1 50); do [ -s "$work/pid" ] && break; sleep 0.1; done
pid=$(cat "$work/pid")
sleep 3 # start-up and first samples are not idle
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
start_ticks=$(ticks); start_bytes=$(stat -c %s "$work/tty.out")
sleep "$secs"
end_ticks=$(ticks); end_bytes=$(stat -c %s "$work/tty.out")
hz=$(getconf CLK_TCK)
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
awk -v t=$((end_ticks - start_ticks)) -v hz="$hz" -v s="$secs" -v b=$((end_bytes - start_bytes)) -v rss="$rss_kb" 'BEGIN {
  printf "idle %ds: CPU %.3f s (%.3f s/min), terminal output %d bytes (%.0f bytes/min), peak RSS %.1f MiB\n",
    s, t/hz, t/hz*60/s, b, b*60/s, rss/1024 }'
