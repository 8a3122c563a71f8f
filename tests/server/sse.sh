#!/usr/bin/env bash
# tinyllm serve with curl: the server-sent events' framing (headers, "data: {...}" events each ended by a
# blank line, "data: [DONE]" last), then SIGTERM and SIGINT: no new connections, the stream in flight
# finishes, exit status 0; a second signal cancels in-flight requests (an error event, then [DONE]).
# Usage: sse.sh TINYLLM_BINARY MODEL_DIR   (exit 77: curl missing)
set -euo pipefail
tool=$1 model=$2
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# start NAME [FLAGS...]: runs the server on a free port; sets $pid and $url
start() {
  local name=$1; shift
  "$tool" serve -m "$model" --port 0 -t 1 "$@" 2>"$tmp/$name.log" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 300); do
    url=$(grep -o 'http://127.0.0.1:[0-9]*' "$tmp/$name.log" | head -1 || true)
    [ -n "$url" ] && return 0
    kill -0 "$pid" 2>/dev/null || fail "$name did not start: $(cat "$tmp/$name.log")"
    sleep 0.1
  done
  fail "$name did not start in time"
}
# wait_exit PID: sets $status to its exit status (it must exit within 30 s)
wait_exit() {
  for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$1" 2>/dev/null && fail "the server did not exit"
  status=0
  wait "$1" || status=$?
}
# wait_for FILE PATTERN: until the file has a line matching it (10 s)
wait_for() {
  for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  fail "no '$2' in $1: $(cat "$1")"
}
stream_body='{"prompt": "The state of the Union", "max_tokens": 20, "temperature": 0, "stream": true}'
long_body='{"prompt": "The state of the Union", "max_tokens": 240, "temperature": 0, "logprobs": 5, "stream": true}'

# --- framing ---------------------------------------------------------------------------------------
start a
curl -sN -D "$tmp/headers" "$url/v1/completions" -H 'Content-Type: application/json' -d "$stream_body" >"$tmp/events" \
  || fail "curl stream"
grep -qi '^HTTP/1.1 200' "$tmp/headers" || fail "status: $(cat "$tmp/headers")"
grep -qi '^content-type: text/event-stream' "$tmp/headers" || fail "content type: $(cat "$tmp/headers")"
grep -qi '^transfer-encoding: chunked' "$tmp/headers" || fail "chunked: $(cat "$tmp/headers")"
grep -qi '^cache-control: no-cache' "$tmp/headers" || fail "cache-control: $(cat "$tmp/headers")"
# Lines alternate: an event "data: ..." then an empty line; the last event is [DONE].
awk 'NR % 2 == 1 && !/^data: ./ { bad = 1 } NR % 2 == 0 && length($0) > 0 { bad = 1 } END { exit bad || NR % 2 }' "$tmp/events" \
  || fail "framing: $(cat -A "$tmp/events" | head -20)"
[ "$(tail -n 2 "$tmp/events" | head -1)" = "data: [DONE]" ] || fail "last event: $(tail -n 3 "$tmp/events")"
events=$(grep -c '^data: {' "$tmp/events")
[ "$events" -ge 20 ] || fail "expected an event per token, got $events"
grep -v '^data: \[DONE\]' "$tmp/events" | grep '^data: ' | sed 's/^data: //' | while read -r json; do
  case $json in '{"id":"cmpl-'*'"object":"text_completion"'*'"choices":[{"text":'*) ;; *) fail "event: $json" ;; esac
done
grep -q '"finish_reason":"length"' "$tmp/events" || fail "finish_reason"
# A request that is invalid is answered before any event: a JSON error, not a stream.
code=$(curl -s -o "$tmp/err" -w '%{http_code}' "$url/v1/completions" -d '{"prompt": "x", "stream": true, "n": 0}')
[ "$code" = 400 ] || fail "invalid stream request: $code"
grep -q '"param":"n"' "$tmp/err" || fail "error body: $(cat "$tmp/err")"

# --- SIGTERM: the stream in flight finishes, new connections are refused, exit 0 ----------------------
curl -sN "$url/v1/completions" -d "$long_body" >"$tmp/inflight" &
curl_pid=$!
wait_for "$tmp/inflight" '^data: {'
kill -TERM "$pid"
wait_for "$tmp/a.log" 'SIGTERM'
sleep 0.2
if curl -s -o /dev/null "$url/health"; then fail "a new connection was accepted after SIGTERM"; fi
wait "$curl_pid" || fail "the stream in flight failed"
[ "$(tail -n 2 "$tmp/inflight" | head -1)" = "data: [DONE]" ] || fail "the stream in flight was cut: $(tail -c 300 "$tmp/inflight")"
grep -q '"finish_reason":"length"' "$tmp/inflight" || fail "in-flight finish: $(tail -c 300 "$tmp/inflight")"
wait_exit "$pid"
[ "$status" = 0 ] || fail "exit status after SIGTERM: $status ($(cat "$tmp/a.log"))"

# --- SIGINT on an idle server: exit 0 ---------------------------------------------------------------
start b
curl -s "$url/health" | grep -q '"ok"' || fail "health"
kill -INT "$pid"
wait_exit "$pid"
[ "$status" = 0 ] || fail "exit status after SIGINT: $status"

# --- a second signal cancels what is in flight: an error event, then [DONE] -------------------------
start c --drain-timeout 60
curl -sN "$url/v1/completions" -d "$long_body" >"$tmp/cut" &
curl_pid=$!
wait_for "$tmp/cut" '^data: {'
kill -TERM "$pid"
wait_for "$tmp/c.log" 'SIGTERM'
kill -TERM "$pid"
wait "$curl_pid" || true
grep -q '^data: {"error":{.*"code":"shutting_down"' "$tmp/cut" || fail "no error event: $(tail -c 300 "$tmp/cut")"
[ "$(tail -n 2 "$tmp/cut" | head -1)" = "data: [DONE]" ] || fail "cancelled stream end: $(tail -c 200 "$tmp/cut")"
wait_exit "$pid"
[ "$status" = 0 ] || fail "exit status after two signals: $status"
echo "server sse: all checks passed"
