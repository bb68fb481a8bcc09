#!/usr/bin/env bash
# Produce and consume figures through `weir playground` with simulated object-store
# latency (--object-store-faults s3-standard | s3-express), for docs/benchmarks.md.
#
#   cargo build --release --bin weir --bin weir-bench
#   bench/object_store.sh [SECONDS] > results.jsonl
#
# For each preset and batch timeout: a closed-loop throughput run, an open-loop latency
# run at 5,000 records/s (5 MB/s), then a restart (cold cache) and one consumer reading
# everything back. Object-store requests come from the playground's /metrics. Objects go
# to a local directory: the latency is injected, not measured on a real bucket.
set -euo pipefail

seconds=${1:-20}
bin=${WEIR_BIN:-target/release}
port=19092
http=19080

run_playground() {
    "$bin/weir" playground --data-dir "$1" --listen 127.0.0.1:$port --http-listen 127.0.0.1:$http \
        --batch-timeout-ms "$2" --object-store-faults "$3,seed=1" >"$1.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        grep -q "bootstrap.servers" "$1.log" 2>/dev/null && return
        sleep 0.1
    done
    echo "playground did not start: $(tail "$1.log")" >&2
    exit 1
}

stop_playground() {
    kill -TERM "$pid"
    wait "$pid" || true
}

for preset in s3-standard s3-express; do
    for batch in 250 50; do
        dir=$(mktemp -d)/data
        run_playground "$dir" "$batch" "$preset"
        label="$preset batch_timeout=${batch}ms"
        "$bin/weir-bench" produce --bootstrap 127.0.0.1:$port --topic tput --partitions 8 \
            --record-bytes 1024 --seconds "$seconds" --in-flight 50000 \
            --metrics http://127.0.0.1:$http/metrics --label "$label closed loop" | jq -c .
        "$bin/weir-bench" produce --bootstrap 127.0.0.1:$port --topic lat --partitions 8 \
            --record-bytes 1024 --seconds "$seconds" --rate 5000 --in-flight 100000 \
            --metrics http://127.0.0.1:$http/metrics --label "$label 5 MB/s" | jq -c .
        stop_playground
        run_playground "$dir" "$batch" "$preset"
        "$bin/weir-bench" consume --bootstrap 127.0.0.1:$port --topic tput --consumers 1 \
            --metrics http://127.0.0.1:$http/metrics --label "$label consume (cold cache)" | jq -c .
        stop_playground
        rm -rf "$(dirname "$dir")"
    done
done
