#!/usr/bin/env bash
# Kafka figures against librdkafka's mock cluster, each next to a kcat baseline on the same cluster in
# the same run (the machine is shared: compare the ratios, not the absolute figures).
#
#   bench/kafka.sh [BUILD_DIR] [SECONDS] [CONNECTIONS] [RECORDS]
#
# 1. Ingress: wrk POSTs binary-mode events to a Broker with storage: kafka (202 after Kafka's delivery
#    report, acks=all, idempotence) for SECONDS; baseline: kcat producing the same number of records of
#    the same size to the same cluster with the same producer settings.
# 2. KafkaSource: RECORDS records produced by kcat are read by a KafkaSource (initialOffset earliest,
#    unordered) whose sink is a file-backed Broker (--no-fsync); time until the source's lag is 0.
#    Baseline: kcat consuming the same topic to its end.
set -euo pipefail
build=${1:-build}
seconds=${2:-10}
connections=${3:-32}
records=${4:-20000}
source "$(dirname "$0")/lib.sh"

"$build/kafka_mock_cluster" --topic kb-events:4 --topic kcat-events:4 --topic source-in:4 >"$work/mock.out" & pids+=($!)
for _ in $(seq 100); do grep -q bootstrap= "$work/mock.out" && break; sleep 0.05; done
bootstrap=$(sed -n 's/^bootstrap=//p' "$work/mock.out")

port=$(free_port)
"$build/sluice" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --log-level warn --no-fsync & pids+=($!)
wait_http "http://127.0.0.1:$port/readyz"
cat >"$work/resources.yaml" <<YAML
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: kb}
spec: {storage: kafka, kafka: {bootstrapServers: "$bootstrap", topic: kb-events}}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: landing}
YAML
"$build/sluice" apply -f "$work/resources.yaml" --server "http://127.0.0.1:$port" >/dev/null

# 1. Ingress into the Kafka-backed broker, then kcat producing as many records of the same size.
wrk -t2 -c"$connections" -d"${seconds}s" -s bench/wrk-publish.lua "http://127.0.0.1:$port/brokers/kb" >"$work/wrk.txt"
ingress_rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
produced=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
value='{"bench":true,"payload":"0123456789abcdef"}'
lines() { awk -v n="$1" -v v="$value" 'BEGIN { for (i = 0; i < n; i++) print v }'; }
lines "$produced" >"$work/values.txt"
t0=$(now)
kcat -b "$bootstrap" -t kcat-events -P -X acks=all -X enable.idempotence=true -X linger.ms=2 \
  -H ce_specversion=1.0 -H ce_type=bench.ingress -H ce_source=/bench/kcat <"$work/values.txt"
t1=$(now)
kcat_rps=$(awk -v n="$produced" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')

# 2. KafkaSource → broker, then kcat consuming the same records.
lines "$records" | kcat -b "$bootstrap" -t source-in -P -X linger.ms=5
cat >"$work/source.yaml" <<YAML
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata:
  name: bench
  annotations: {kafka.eventing.knative.dev/delivery.order: unordered}
spec:
  bootstrapServers: ["$bootstrap"]
  topics: [source-in]
  initialOffset: earliest
  sink: {ref: {kind: Broker, name: landing}}
YAML
t0=$(now)
"$build/sluice" apply -f "$work/source.yaml" --server "http://127.0.0.1:$port" >/dev/null
until curl -s "http://127.0.0.1:$port/apis/v1/kafkasources/bench" |
  python3 -c "import json,sys; sys.exit(0 if json.load(sys.stdin)['status'].get('partitions') else 1)" 2>/dev/null; do
  sleep 0.02
done
t_assigned=$(now)
until curl -s "http://127.0.0.1:$port/apis/v1/kafkasources/bench" |
  python3 -c "import json,sys; s=json.load(sys.stdin)['status']; sys.exit(0 if s.get('partitions') and s.get('lag')==0 and s['delivery']['delivered']>=$records else 1)" 2>/dev/null; do
  sleep 0.05
done
t1=$(now)
source_rps=$(awk -v n="$records" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
source_assigned_rps=$(awk -v n="$records" -v a="$t_assigned" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
t0=$(now)
kcat -b "$bootstrap" -t source-in -C -e -q -o beginning >/dev/null
t1=$(now)
kcat_consume_rps=$(awk -v n="$records" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')

echo "Kafka-backed ingress, $connections connections, ${seconds}s: $ingress_rps events/s ($produced events)"
echo "  kcat producing $produced records (acks=all, idempotence): $kcat_rps records/s"
awk -v a="$ingress_rps" -v b="$kcat_rps" 'BEGIN { printf "  ratio ingress/kcat: %.2f\n", a / b }'
echo "KafkaSource -> file broker, $records records (from apply, group join included): $source_rps events/s"
echo "  from the partitions' assignment until lag 0: $source_assigned_rps events/s"
echo "  kcat consuming the same records: $kcat_consume_rps records/s"
awk -v a="$source_rps" -v b="$kcat_consume_rps" 'BEGIN { printf "  ratio source/kcat: %.2f\n", a / b }'
awk -v a="$source_assigned_rps" -v b="$kcat_consume_rps" 'BEGIN { printf "  ratio source (after assignment)/kcat: %.2f\n", a / b }'
