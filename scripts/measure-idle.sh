#!/usr/bin/env bash
# Idle cost of a long-running screen, measured untouched in a tmux pane (80x24 unless SIZE
# says otherwise, e.g. 200x60): CPU time, peak RSS and bytes written to the terminal.
#   scripts/measure-idle.sh SECONDS demo [SIZE]          the cockpit demo (simulator traffic)
#   scripts/measure-idle.sh SECONDS watch [SIZE]         the read-only wall, simulator metrics
#   scripts/measure-idle.sh SECONDS cockpit [SIZE]       the cockpit's overview, simulator metrics
#   scripts/measure-idle.sh SECONDS watch-status [SIZE]  `watch -n 1 rollout-tui status`
#   scripts/measure-idle.sh SECONDS compare [SIZE]       watch, cockpit and watch-status side by
#                                                        side, at the same time, on the same
#                                                        rollouts and metrics source, with ratios
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
mode="${2:-demo}"
size="${3:-80x24}"
cols="${size%x*}"
rows="${size#*x}"
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
command_for() {
  case "$1" in
    demo) echo "$bin --data-dir $data demo" ;;
    watch) echo "$bin --config $work/config.toml --data-dir $data watch" ;;
    cockpit) echo "$bin --config $work/config.toml --data-dir $data" ;;
    # The same metrics source as the wall, so `status` judges the same health.
    watch-status) echo "watch -n 1 $bin --config $work/config.toml --data-dir $data status" ;;
    *) echo "unknown mode $1" >&2; exit 2 ;;
  esac
}
# Starts MODE in its own session: its pid goes to $work/MODE.pid, its output to MODE.out.
launch() {
  local cmd
  cmd=$(command_for "$1")
  tmux -L "$sock" new-session -d -s "$1" -x "$cols" -y "$rows" "sh -c 'echo \$\$ > $work/$1.pid; exec $cmd'"
  tmux -L "$sock" pipe-pane -t "$1" -O "cat > $work/$1.out"
  for _ in $(seq 1 50); do [ -s "$work/$1.pid" ] && break; sleep 0.1; done
}
if [ "$mode" = compare ]; then modes="watch cockpit watch-status"; else modes="$mode"; fi
for m in $modes; do launch "$m"; done
sleep 3 # start-up is not idle
# CPU of the process and every child it ran (watch forks status each second).
cpu_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$(cat "$work/$1.pid")/stat"; }
declare -A start_ticks start_bytes peak_kb cpu
for m in $modes; do
  start_ticks[$m]=$(cpu_ticks "$m")
  start_bytes[$m]=$(stat -c %s "$work/$m.out")
  peak_kb[$m]=0
done
for _ in $(seq 1 "$secs"); do
  sleep 1
  for m in $modes; do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$(cat "$work/$m.pid")/status")
    [ "$rss" -gt "${peak_kb[$m]}" ] && peak_kb[$m]=$rss
  done
done
hz=$(getconf CLK_TCK)
for m in $modes; do
  t=$(( $(cpu_ticks "$m") - start_ticks[$m] ))
  b=$(( $(stat -c %s "$work/$m.out") - start_bytes[$m] ))
  cpu[$m]=$t
  awk -v m="$m" -v t="$t" -v hz="$hz" -v s="$secs" -v b="$b" -v rss="${peak_kb[$m]}" -v size="$size" 'BEGIN {
    printf "%s at %s, %ds idle: CPU %.2f s (%.3f s/min), terminal output %d bytes (%.0f bytes/min), peak RSS %.1f MiB\n",
      m, size, s, t/hz, t/hz*60/s, b, b*60/s, rss/1024 }'
done
if [ "$mode" = compare ]; then
  for m in watch cockpit; do
    awk -v a="${cpu[watch-status]}" -v b="${cpu[$m]}" -v m="$m" 'BEGIN {
      if (b == 0) printf "watch -n 1 status used %d ticks; %s used none measurable\n", a, m;
      else printf "watch -n 1 status uses %.1fx the CPU of %s\n", a / b, m }'
  done
fi
if [ "$mode" = watch-status ] || [ "$mode" = compare ]; then
  # `watch` itself is small; what it runs each second is the real cost.
  python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
print("one `rollout-tui status` run: peak RSS %.1f MiB" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024))' "$bin" --config "$work/config.toml" --data-dir "$data" status
fi
