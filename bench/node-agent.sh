#!/usr/bin/env bash
# The node agent's own cost: runs a release `architect serve` and one `architect agent` against
# it for DURATION seconds (default 120) at a 5 s interval, then prints the agent's CPU use (utime +
# stime from /proc/<pid>/stat over the run, as % of one core) and its memory (VmRSS, VmHWM).
# Usage: cargo build --release && bench/node-agent.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=./target/release/architect
DURATION=${1:-120}
PORT=${PORT_BENCH:-18931}
DIR=$(mktemp -d)
trap 'kill $AGENT $SERVER 2>/dev/null || true; rm -rf "$DIR"' EXIT
export ARCHITECT_PASSWORD=bench-password-1
$BIN serve --data-dir "$DIR/data" --port "$PORT" --local-node false >"$DIR/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
TOKEN=$($BIN token create --url "http://127.0.0.1:$PORT" --name bench-agent --scope agent | tail -n 1)
ARCHITECT_TOKEN=$TOKEN $BIN agent --dashboard "http://127.0.0.1:$PORT" --node-id bench --interval 5s \
  >"$DIR/agent.log" 2>&1 &
AGENT=$!
ticks() { awk '{print $14 + $15}' "/proc/$AGENT/stat"; }
HZ=$(getconf CLK_TCK)
sleep 10                       # skip start-up (runtime, TLS roots, first sysinfo scan)
T0=$(ticks); S0=$(date +%s.%N)
sleep "$DURATION"
T1=$(ticks); S1=$(date +%s.%N)
awk -v t0="$T0" -v t1="$T1" -v s0="$S0" -v s1="$S1" -v hz="$HZ" \
  'BEGIN { cpu=(t1-t0)/hz; wall=s1-s0; printf "agent CPU: %.2f s over %.0f s = %.3f %% of one core\n", cpu, wall, 100*cpu/wall }'
grep -E 'VmRSS|VmHWM' "/proc/$AGENT/status"
echo "heartbeats received: $(curl -fs -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/nodes" | grep -o '"status":"[a-z]*"' | head -1)"
