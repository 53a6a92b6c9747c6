#!/usr/bin/env bash
# Idle cost of a long-running screen, measured untouched in an 80x24 tmux pane:
# CPU time, peak RSS and bytes written to the terminal over SECONDS.
#   scripts/measure-idle.sh SECONDS demo          the cockpit demo (simulator traffic)
#   scripts/measure-idle.sh SECONDS watch         the read-only wall, simulator metrics
#   scripts/measure-idle.sh SECONDS watch-status  `watch -n 1 rollout-tui status`, for comparison
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
mode="${2:-demo}"
cargo build --release -q
bin="$PWD/target/release/rollout-tui"
work=$(mktemp -d)
sock="idle-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true; rm -rf "$work"' EXIT
data="$work/data"
printf '[metrics]\nkind = "simulator"\n' > "$work/config.toml"
if [ "$mode" != demo ]; then
  # The demo's own rollouts: run the demo once to seed the store, then quit it.
  tmux -L "$sock" new-session -d -s seed -x 80 -y 24 "$bin --data-dir $data demo"
  for _ in $(seq 1 100); do
    [ "$("$bin" --data-dir "$data" status --json 2>/dev/null | grep -c '"id"')" -ge 3 ] && break
    sleep 0.1
  done
  tmux -L "$sock" send-keys -t seed q
  sleep 0.5
fi
case "$mode" in
  demo) cmd="$bin --data-dir $data demo" ;;
  watch) cmd="$bin --config $work/config.toml --data-dir $data watch" ;;
  watch-status) cmd="watch -n 1 $bin --data-dir $data status" ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
tmux -L "$sock" new-session -d -s idle -x 80 -y 24 "sh -c 'echo \$\$ > $work/pid; exec $cmd'"
tmux -L "$sock" pipe-pane -t idle -O "cat > $work/tty.out"
for _ in $(seq 1 50); do [ -s "$work/pid" ] && break; sleep 0.1; done
pid=$(cat "$work/pid")
sleep 3 # start-up is not idle
# CPU of the process and every child it ran (watch forks status each second).
cpu_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat"; }
start_ticks=$(cpu_ticks); start_bytes=$(stat -c %s "$work/tty.out")
peak_kb=0
for _ in $(seq 1 "$secs"); do
  sleep 1
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  [ "$rss" -gt "$peak_kb" ] && peak_kb=$rss
done
end_ticks=$(cpu_ticks); end_bytes=$(stat -c %s "$work/tty.out")
hz=$(getconf CLK_TCK)
awk -v m="$mode" -v t=$((end_ticks - start_ticks)) -v hz="$hz" -v s="$secs" -v b=$((end_bytes - start_bytes)) -v rss="$peak_kb" 'BEGIN {
  printf "%s, %ds idle: CPU %.2f s (%.3f s/min), terminal output %d bytes (%.0f bytes/min), peak RSS %.1f MiB\n",
    m, s, t/hz, t/hz*60/s, b, b*60/s, rss/1024 }'
if [ "$mode" = watch-status ]; then
  # `watch` itself is small; what it runs each second is the real cost.
  python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
print("one `rollout-tui status` run: peak RSS %.1f MiB" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))' "$bin" --data-dir "$data" status
fi
