# Shared by the bench scripts (sourced after their arguments are read): a work directory and the
# processes they start, both cleaned up on exit (KEEP=1 keeps the directory), and the helpers they use.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work=$(mktemp -d)
pids=()
cleanup() {
  # Newest first: a server goes before the cluster or agent it talks to.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 200); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "no answer from $1" >&2
  return 1
}
now() { date +%s.%N; }
# CPU seconds (user + system, every thread) that process PID has used so far.
cpu_seconds() { awk -v tck="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / tck }' "/proc/$1/stat"; }
# Microseconds of CPU per request: cpu_per_request CPU_BEFORE CPU_AFTER WRK_OUTPUT_FILE
cpu_per_request() {
  awk -v b="$1" -v a="$2" '/requests in/ { printf "%.1f", (a - b) * 1e6 / $1 }' "$3"
}
