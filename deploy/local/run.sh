#!/usr/bin/env bash
# Two Freeway instances sharing one Redis, behind nginx, on one machine.
#
#   deploy/local/run.sh            # then: http://127.0.0.1:8080/v1/chat/completions
#
# Ports and paths come from the environment (defaults in brackets): LB_PORT [8080],
# A_PORT [8081], B_PORT [8082], A_ADMIN_PORT [9081], B_ADMIN_PORT [9082], REDIS_PORT [6390],
# RUN_DIR [deploy/local/run] (logs, pids, the SQLite store), FREEWAY_BIN
# [target/release/freeway], NGINX_BIN [nginx], REDIS_SERVER [redis-server]. Provider keys are read
# from the environment as usual (GROQ_API_KEY, ...). Needs `make build plugins` first.
#
# SIGINT/SIGTERM stops everything in order: the balancer stops taking connections, each
# instance drains (finishes in-flight requests and streams, flushes its ledger), then Redis.
# To restart one instance without dropping traffic: `kill -TERM $(cat $RUN_DIR/a.pid)` — nginx
# sends new requests to the other one meanwhile — then start it again the same way.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
LB_PORT="${LB_PORT:-8080}"
A_PORT="${A_PORT:-8081}"
B_PORT="${B_PORT:-8082}"
A_ADMIN_PORT="${A_ADMIN_PORT:-9081}"
B_ADMIN_PORT="${B_ADMIN_PORT:-9082}"
REDIS_PORT="${REDIS_PORT:-6390}"
RUN_DIR="${RUN_DIR:-$here/run}"
FREEWAY_BIN="${FREEWAY_BIN:-$root/target/release/freeway}"
# (Not $NGINX: nginx itself reads that variable, for inherited sockets.)
NGINX_BIN="${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}"
REDIS_SERVER="${REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}"

for tool in "$FREEWAY_BIN" "$NGINX_BIN" "$REDIS_SERVER"; do
    [ -x "$tool" ] || { echo "run.sh: $tool is missing (make build; apt-get install nginx redis-server)" >&2; exit 1; }
done
mkdir -p "$RUN_DIR"

pids=()
stop_all() {
    trap - INT TERM
    # The balancer first, so nothing new arrives; then the instances drain in parallel.
    [ -f "$RUN_DIR/nginx.pid" ] && kill -QUIT "$(cat "$RUN_DIR/nginx.pid")" 2>/dev/null || true
    for name in a b; do
        [ -f "$RUN_DIR/$name.pid" ] && kill -TERM "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null || true
    done
    for name in a b; do
        if [ -f "$RUN_DIR/$name.pid" ]; then
            pid="$(cat "$RUN_DIR/$name.pid")"
            while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        fi
    done
    [ -f "$RUN_DIR/redis.pid" ] && kill -TERM "$(cat "$RUN_DIR/redis.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -f "$RUN_DIR"/*.pid
    echo "run.sh: stopped"
    exit "${1:-0}"
}
trap stop_all INT TERM

wait_http() { # url, what
    for _ in $(seq 1 300); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "run.sh: $2 did not come up; see $RUN_DIR" >&2
    stop_all 1
}

"$REDIS_SERVER" --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$RUN_DIR" --logfile "$RUN_DIR/redis.log" &
echo $! > "$RUN_DIR/redis.pid"

start_instance() { # name, port, admin port
    FREEWAY_PORT="$2" FREEWAY_ADMIN_PORT="$3" FREEWAY_DATA="$RUN_DIR" REDIS_PORT="$REDIS_PORT" \
        "$FREEWAY_BIN" serve --config "$here/gateway.toml" >>"$RUN_DIR/$1.out" 2>>"$RUN_DIR/$1.log" &
    echo $! > "$RUN_DIR/$1.pid"
}
start_instance a "$A_PORT" "$A_ADMIN_PORT"
wait_http "http://127.0.0.1:$A_PORT/healthz" "instance a"
start_instance b "$B_PORT" "$B_ADMIN_PORT"
wait_http "http://127.0.0.1:$B_PORT/healthz" "instance b"

sed -e "s|@RUN@|$RUN_DIR|g" -e "s|@LB_PORT@|$LB_PORT|g" -e "s|@A_PORT@|$A_PORT|g" \
    -e "s|@B_PORT@|$B_PORT|g" "$here/nginx.conf.in" > "$RUN_DIR/nginx.conf"
"$NGINX_BIN" -p "$RUN_DIR" -c "$RUN_DIR/nginx.conf" -e "$RUN_DIR/nginx-error.log" &
wait_http "http://127.0.0.1:$LB_PORT/healthz" "nginx"

echo "freeway on http://127.0.0.1:$LB_PORT (instances :$A_PORT and :$B_PORT, admin :$A_ADMIN_PORT and :$B_ADMIN_PORT, redis :$REDIS_PORT)"
# Wait until a signal arrives (the trap stops everything) or a component dies.
while :; do
    for name in a b redis nginx; do
        pidfile="$RUN_DIR/$name.pid"
        [ -f "$pidfile" ] || continue
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null && [ "$name" != a ] && [ "$name" != b ]; then
            echo "run.sh: $name exited; stopping" >&2
            stop_all 1
        fi
    done
    sleep 0.5 &
    wait $! || true
done
