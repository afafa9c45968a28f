#!/usr/bin/env bash
# Makes sure the brokers the integration tests need are reachable on loopback:
# RabbitMQ (127.0.0.1:5672, guest/guest) and Redis (127.0.0.1:6379). A broker
# that is already running is used as it is; one that is installed but down is
# started; one that is missing is installed with apt-get when running as root.
# Otherwise the script prints what to run and fails. Kafka needs no server: its
# tests run an in-process cluster (kfake). The RabbitMQ interop tests also need
# Python's pika client (Debian's python3-pika), installed the same way.
set -euo pipefail

log() { printf 'brokers: %s\n' "$*" >&2; }

reachable() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_for() { # name host port seconds
  local i
  for ((i = 0; i < $4 * 4; i++)); do
    reachable "$2" "$3" && return 0
    sleep 0.25
  done
  log "$1 did not come up on $2:$3 within $4s"
  return 1
}

apt_install() { # packages...
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    return 1
  fi
  if [ -z "${BROKERS_APT_UPDATED:-}" ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    BROKERS_APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

redis() {
  if reachable 127.0.0.1 6379; then
    log "redis: running on 127.0.0.1:6379"
    return
  fi
  if ! command -v redis-server >/dev/null; then
    apt_install redis-server || {
      log "redis: not installed. Install it (apt-get install redis-server, or docker run -p 6379:6379 redis:7) and run this again."
      return 1
    }
  fi
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  log "redis: starting"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for redis 127.0.0.1 6379 30
}

rabbitmq() {
  if reachable 127.0.0.1 5672; then
    log "rabbitmq: running on 127.0.0.1:5672"
    return
  fi
  if ! command -v rabbitmq-server >/dev/null; then
    apt_install rabbitmq-server || {
      log "rabbitmq: not installed. Install it (apt-get install rabbitmq-server, or docker run -p 5672:5672 rabbitmq:3) and run this again."
      return 1
    }
  fi
  log "rabbitmq: starting (this takes a few seconds)"
  rabbitmq-server -detached
  wait_for rabbitmq 127.0.0.1 5672 120
}

has_pika() {
  local py
  for py in /usr/bin/python3 python3; do
    command -v "$py" >/dev/null && "$py" -c 'import pika' 2>/dev/null && return 0
  done
  return 1
}

pika() {
  if has_pika; then
    log "pika: installed"
    return
  fi
  apt_install python3-pika && has_pika || {
    log "pika: not installed. Install it (apt-get install python3-pika) and run this again; the RabbitMQ interop tests publish and consume with it."
    return 1
  }
}

redis
rabbitmq
pika
