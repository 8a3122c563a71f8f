#!/usr/bin/env bash
# Two tinyllm serve replicas behind nginx (the configuration docs/server.md describes): requests spread
# over both, the greedy text through the balancer is the oracle's, and one replica stopped (SIGTERM)
# in the middle of a run costs no request: its in-flight ones finish, nginx retries the others on the
# second replica.
# Usage: nginx.sh TINYLLM_BINARY MODEL_DIR   (exit 77: nginx or curl missing)
set -euo pipefail
tool=$1 model=$2
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "SKIP: nginx is not installed"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
tmp=$(mktemp -d)
chmod 755 "$tmp"
pids=()
cleanup() {
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/error.log" ] && tail -5 "$tmp/error.log" >&2; exit 1; }

# start NAME: a replica on a free port; sets $pid and $port
start() {
  "$tool" serve -m "$model" --port 0 -t 1 --alias gpt2-demo --log-requests 2>"$tmp/$1.log" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 300); do
    port=$(grep -o 'http://127.0.0.1:[0-9]*' "$tmp/$1.log" | head -1 | sed 's/.*://' || true)
    [ -n "$port" ] && return 0
    kill -0 "$pid" 2>/dev/null || fail "$1 did not start: $(cat "$tmp/$1.log")"
    sleep 0.1
  done
  fail "$1 did not start in time"
}
start a
pid_a=$pid port_a=$port
start b
port_b=$port
lb_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
  || echo $((20000 + RANDOM % 20000)))

mkdir -p "$tmp/temp"
chmod 777 "$tmp/temp"
cat >"$tmp/nginx.conf" <<EOF
worker_processes 1;
error_log $tmp/error.log warn;
pid $tmp/nginx.pid;
events { worker_connections 256; }
http {
  access_log $tmp/access.log;
  client_body_temp_path $tmp/temp/body;
  proxy_temp_path $tmp/temp/proxy;
  fastcgi_temp_path $tmp/temp/fastcgi;
  uwsgi_temp_path $tmp/temp/uwsgi;
  scgi_temp_path $tmp/temp/scgi;
  upstream tinyllm {
    least_conn;
    server 127.0.0.1:$port_a max_fails=1 fail_timeout=30s;
    server 127.0.0.1:$port_b max_fails=1 fail_timeout=30s;
    keepalive 16;
  }
  server {
    listen 127.0.0.1:$lb_port;
    location / {
      proxy_pass http://tinyllm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 600s;
      proxy_next_upstream error timeout http_502 http_503 non_idempotent;
      proxy_next_upstream_tries 2;
    }
  }
}
EOF
"$nginx" -p "$tmp" -c "$tmp/nginx.conf" -g 'daemon on;' 2>"$tmp/nginx.out" || fail "nginx: $(cat "$tmp/nginx.out")"
lb=http://127.0.0.1:$lb_port
for _ in $(seq 100); do curl -s -o /dev/null "$lb/health" && break; sleep 0.1; done

# The oracle's greedy text, through the balancer.
expected=', and the United States, and the United States, and the United States, and the United States, and the United States, and the United States, and the United States'
curl -s "$lb/v1/completions" -H 'Content-Type: application/json' \
  -d '{"model": "gpt2-demo", "prompt": "The state of the Union", "max_tokens": 35, "temperature": 0}' >"$tmp/one"
grep -qF "\"text\":\"$expected\"" "$tmp/one" || fail "text through nginx: $(cat "$tmp/one")"

# run N LABEL: N completions (4 at a time, half streamed) through nginx; one status code per line
run() {
  seq "$1" | xargs -P 4 -I{} sh -c '
    if [ $(({} % 2)) = 0 ]; then s=true; else s=false; fi
    curl -s -o /dev/null -w "%{http_code}\n" --max-time 60 "$0/v1/completions" -H "Content-Type: application/json" \
      -d "{\"prompt\": \"The state of the Union\", \"max_tokens\": 24, \"temperature\": 0, \"stream\": $s}"' "$lb" >"$tmp/$2"
}
run 24 spread
[ "$(grep -c '^200$' "$tmp/spread")" = 24 ] || fail "spread run: $(sort "$tmp/spread" | uniq -c)"
served_a=$(grep -c 'POST /v1/completions -> 200' "$tmp/a.log" || true)
served_b=$(grep -c 'POST /v1/completions -> 200' "$tmp/b.log" || true)
[ "$served_a" -gt 0 ] && [ "$served_b" -gt 0 ] || fail "requests did not spread: a $served_a, b $served_b"

# Replica a stopped mid-run: every request still succeeds.
run 60 failover &
run_pid=$!
for _ in $(seq 100); do
  [ "$(grep -c 'POST /v1/completions -> 200' "$tmp/a.log" || true)" -gt $((served_a + 3)) ] && break
  sleep 0.05
done
kill -TERM "$pid_a"
wait "$run_pid"
ok=$(grep -c '^200$' "$tmp/failover" || true)
[ "$ok" = 60 ] || fail "failover run: $(sort "$tmp/failover" | uniq -c)"
for _ in $(seq 300); do kill -0 "$pid_a" 2>/dev/null || break; sleep 0.1; done
status=0
wait "$pid_a" || status=$?
[ "$status" = 0 ] || fail "replica a exit status $status"
after_a=$(grep -c 'POST /v1/completions -> 200' "$tmp/a.log" || true)
after_b=$(grep -c 'POST /v1/completions -> 200' "$tmp/b.log" || true)
[ "$after_b" -gt "$served_b" ] || fail "replica b took no traffic after a stopped"
echo "server nginx: 24 requests spread (a $served_a, b $served_b); 60 with a stopped mid-run, all 200" \
  "(a $((after_a - served_a)), b $((after_b - served_b)))"
