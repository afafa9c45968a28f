#!/usr/bin/env bash
# Starts the development Kafka broker (kfake, in one Go process) on
# 127.0.0.1:${KAFKA_PORT:-9092} in the background and prints its pid.
# Stop it with: kill <pid>
set -euo pipefail
cd "$(dirname "$0")/.."
port="${KAFKA_PORT:-9092}"
go build -o "${TMPDIR:-/tmp}/busline-devkafka" ./cmd/devkafka
"${TMPDIR:-/tmp}/busline-devkafka" -port "$port" "$@" &
echo "devkafka pid $! on 127.0.0.1:$port (export BUSLINE_KAFKA_BROKERS=127.0.0.1:$port)"
