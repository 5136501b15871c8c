#!/usr/bin/env bash
# MCP gateway: tools/call throughput and latency through `sluice serve`'s /mcp (session, catalog,
# activator, upstream session to the replica) next to the same calls made straight to the agent's own
# /mcp, in the same run (the machine is shared: compare the ratios).
#
#   bench/mcp.sh [BUILD_DIR] [SECONDS] [CONNECTIONS]
#
# The agent is build/mcp_agent (tool `add`), one replica kept up (min-scale 1). wrk --latency gives the
# percentiles; bench/wrk-mcp-call.lua counts answers that are not a 200 with the right sum.
set -euo pipefail
build=${1:-build}
seconds=${2:-10}
connections=${3:-16}
source "$(dirname "$0")/lib.sh"
# initialize + notifications/initialized against an MCP endpoint; prints the Mcp-Session-Id.
open_session() {
  local url=$1 id
  id=$(curl -s -D - -o /dev/null "$url" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}' |
    awk -F': ' 'tolower($1) == "mcp-session-id" {gsub("\r", "", $2); print $2}')
  curl -s -o /dev/null "$url" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H "Mcp-Session-Id: $id" -H 'MCP-Protocol-Version: 2025-06-18' \
    -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  echo "$id"
}
# wrk with the tools/call script; prints "rps p50 p99 failed".
run_wrk() {
  local url=$1 session=$2 tool=$3 out=$4
  MCP_SESSION=$session MCP_TOOL=$tool wrk -t2 -c"$connections" -d"${seconds}s" --latency -s bench/wrk-mcp-call.lua "$url" >"$out"
  awk '/Requests\/sec/ {rps=$2} $1 == "50%" {p50=$2} $1 == "99%" {p99=$2} /failed calls:/ {failed=$3}
       END {print rps, p50, p99, failed}' "$out"
}

agent_port=$(free_port)
PORT=$agent_port "$build/mcp_agent" >"$work/agent.log" 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$agent_port/healthz"
direct_session=$(open_session "http://127.0.0.1:$agent_port/mcp")
read -r d_rps d_p50 d_p99 d_failed < <(run_wrk "http://127.0.0.1:$agent_port/mcp" "$direct_session" add "$work/direct.txt")

port=$(free_port)
"$build/sluice" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --log-level "${SLUICE_LOG_LEVEL:-warn}" ${SLUICE_SERVE_ARGS:-} & pids+=($!)
wait_http "http://127.0.0.1:$port/readyz"
cat >"$work/agent.yaml" <<YAML
apiVersion: sluice.dev/v1
kind: Agent
metadata: {name: calc}
spec:
  template:
    metadata:
      annotations: {sluice.dev/protocol: mcp, autoscaling.knative.dev/min-scale: "1", autoscaling.knative.dev/max-scale: "1"}
    spec:
      containers:
      - command: [$PWD/$build/mcp_agent]
        readinessProbe: {httpGet: {path: /healthz}}
YAML
"$build/sluice" apply -f "$work/agent.yaml" --wait --timeout 60s --server "http://127.0.0.1:$port" >/dev/null
gateway_session=$(open_session "http://127.0.0.1:$port/mcp")
read -r g_rps g_p50 g_p99 g_failed < <(run_wrk "http://127.0.0.1:$port/mcp" "$gateway_session" calc.add "$work/gateway.txt")

echo "tools/call add, $connections connections, ${seconds}s each (one agent replica):"
echo "  direct to the agent:  $d_rps calls/s  p50 $d_p50  p99 $d_p99  (failed $d_failed)"
echo "  through /mcp:         $g_rps calls/s  p50 $g_p50  p99 $g_p99  (failed $g_failed)"
awk -v g="$g_rps" -v d="$d_rps" 'BEGIN { printf "  ratio gateway/direct throughput: %.2f\n", g / d }'
