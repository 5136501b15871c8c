#!/usr/bin/env bash
# Ingress throughput and publish-to-sink latency of `sluice serve`, each next to its baseline measured in
# the same run (the machine is shared: compare the ratio, not the absolute figures).
#
#   bench/ingress.sh [BUILD_DIR] [SECONDS] [CONNECTIONS]
#
# 1. Throughput: wrk with CONNECTIONS connections POSTs binary-mode events, first to bare_server (the
#    same HTTP stack answering 202 with no decoding and no log), then to a durable broker (fsync on),
#    then to one without fsync; each server's CPU time per request (from /proc/PID/stat) beside it: on a
#    machine shared with wrk the throughput ratio follows the ratio of CPU per request.
# 2. Latency: publish_latency at 1,000 events/s, first straight to its own sink (one HTTP hop), then
#    through the broker and a trigger to the same sink.
set -euo pipefail
build=${1:-build}
seconds=${2:-10}
connections=${3:-32}
source "$(dirname "$0")/lib.sh"
rps() { awk '/Requests\/sec/ {print $2}'; }

bare_port=$(free_port)
"$build/bare_server" --listen "127.0.0.1:$bare_port" & pids+=($!)
bare_pid=$!
sleep 0.3
cpu0=$(cpu_seconds "$bare_pid")
bare=$(wrk -t2 -c"$connections" -d"${seconds}s" -s bench/wrk-publish.lua "http://127.0.0.1:$bare_port/brokers/default" | tee "$work/bare.txt" | rps)
bare_cpu=$(cpu_per_request "$cpu0" "$(cpu_seconds "$bare_pid")" "$work/bare.txt")

port=$(free_port)
"$build/sluice" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --log-level warn & pids+=($!)
durable_pid=$!
wait_http "http://127.0.0.1:$port/readyz"
sink_port=$(free_port)
cat >"$work/broker.yaml" <<YAML
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: default}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: latency}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: to-sink}
spec: {broker: latency, subscriber: {uri: "http://127.0.0.1:$sink_port/"}}
YAML
"$build/sluice" apply -f "$work/broker.yaml" --server "http://127.0.0.1:$port" >/dev/null
cpu0=$(cpu_seconds "$durable_pid")
durable=$(wrk -t2 -c"$connections" -d"${seconds}s" -s bench/wrk-publish.lua "http://127.0.0.1:$port/brokers/default" | tee "$work/durable.txt" | rps)
durable_cpu=$(cpu_per_request "$cpu0" "$(cpu_seconds "$durable_pid")" "$work/durable.txt")
fsyncs=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^sluice_broker_fsync_duration_seconds_count\{broker="default"\}/ {print $2}')
appended=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^sluice_broker_events_appended_total\{broker="default"\}/ {print $2}')

nofsync_port=$(free_port)
"$build/sluice" serve --listen "127.0.0.1:$nofsync_port" --data-dir "$work/data-nofsync" --log-level warn --no-fsync & pids+=($!)
nofsync_pid=$!
wait_http "http://127.0.0.1:$nofsync_port/readyz"
"$build/sluice" apply -f "$work/broker.yaml" --server "http://127.0.0.1:$nofsync_port" >/dev/null
cpu0=$(cpu_seconds "$nofsync_pid")
nofsync=$(wrk -t2 -c"$connections" -d"${seconds}s" -s bench/wrk-publish.lua "http://127.0.0.1:$nofsync_port/brokers/default" | tee "$work/nofsync.txt" | rps)
nofsync_cpu=$(cpu_per_request "$cpu0" "$(cpu_seconds "$nofsync_pid")" "$work/nofsync.txt")
fsync_mean_ms=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^sluice_broker_fsync_duration_seconds_sum\{broker="default"\}/ {s=$2} /^sluice_broker_fsync_duration_seconds_count\{broker="default"\}/ {c=$2} END {if (c > 0) printf "%.3f", s / c * 1000}')

direct=$("$build/publish_latency" --target "127.0.0.1:$sink_port" --path /direct --sink-port "$sink_port" --seconds "$seconds")
through=$("$build/publish_latency" --target "127.0.0.1:$port" --path /brokers/latency --sink-port "$sink_port" --seconds "$seconds")

echo "throughput, $connections connections, ${seconds}s each:"
echo "  bare_server 202:      $bare req/s"
echo "  durable broker:       $durable req/s  ($appended events in $fsyncs fsyncs)"
awk -v d="$durable" -v b="$bare" 'BEGIN { printf "  ratio durable/bare:   %.2f\n", d / b }'
echo "  broker without fsync: $nofsync req/s (the same path, no fdatasync: what is not disk time)"
awk -v d="$nofsync" -v b="$bare" 'BEGIN { printf "  ratio no-fsync/bare:  %.2f\n", d / b }'
echo "  mean fdatasync:       $fsync_mean_ms ms"
echo "  server CPU per request (user + system, all threads): bare $bare_cpu us, durable $durable_cpu us, without fsync $nofsync_cpu us"
echo "latency at 1000 events/s:"
echo "  direct to sink:       $direct"
echo "  through the broker:   $through"
