#!/usr/bin/env bash
# Smoke test of the README's run command: `make run` on a fresh data directory must bring up a
# healthy demo tenant (healthz and the login page answer 200), then stop cleanly on Ctrl-C
# (SIGINT to its process group, as a terminal sends it), leaving no process behind.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${SMOKE_PORT:-18765}
DATA_DIR=$(mktemp -d /tmp/billing-smoke.XXXXXX)
LOG="$DATA_DIR/run.log"
export DATA_DIR PORT
started=$(date +%s)
setsid make run >"$LOG" 2>&1 &
leader=$!
cleanup() { kill -INT -- "-$leader" 2>/dev/null || true; sleep 2; kill -KILL -- "-$leader" 2>/dev/null || true; }
trap cleanup EXIT
url() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 --resolve "demo.localhost:$PORT:127.0.0.1" "http://demo.localhost:$PORT$1" || true; }
for _ in $(seq 1 600); do  # up to 10 minutes: a fresh install migrates, clones and seeds the demo first
  [ "$(url /healthz)" = 200 ] && break
  kill -0 "$leader" 2>/dev/null || { echo "make run exited early:"; tail -40 "$LOG"; exit 1; }
  sleep 1
done
health=$(url /healthz); login=$(url /accounts/login/); ready=$(url /readyz)
echo "healthy after $(( $(date +%s) - started ))s: healthz=$health readyz=$ready login=$login"
[ "$health" = 200 ] && [ "$login" = 200 ] && [ "$ready" = 200 ] || { tail -60 "$LOG"; exit 1; }
kill -INT -- "-$leader"
for _ in $(seq 1 60); do kill -0 "$leader" 2>/dev/null || break; sleep 1; done
trap - EXIT
if kill -0 "$leader" 2>/dev/null; then echo "make run did not stop on Ctrl-C"; cleanup; exit 1; fi
left=$(pgrep -f "$DATA_DIR" || true)
if [ -n "$left" ]; then echo "processes left behind: $left"; pgrep -af "$DATA_DIR"; pkill -KILL -f "$DATA_DIR" || true; exit 1; fi
echo "stopped cleanly; smoke test passed"
rm -rf "$DATA_DIR"
