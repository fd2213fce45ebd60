#!/usr/bin/env bash
# Instruction counts (valgrind --tool=callgrind) of the agent's two hot paths, stable on a noisy
# machine where times are not:
#   probe   a 20-target agent (HTTPS registries on a loopback nginx, TLS 1.3) probing every 2 s:
#           instructions per probe round, and where they go;
#   render  a 2,000-pair agent (2,000 targets on the same nginx, each probed once) scraped 5
#           times: instructions per /metrics answer of about 14 MB.
#
#   bash Tests/Bench/profile.sh [--bin PATH] [--out DIR]
#
# Callgrind files stay in DIR (default .build-perf/profile) for callgrind_annotate or kcachegrind.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
LIB="python3 $ROOT/Tests/Bench/benchlib.py"
BIN=$ROOT/.build-perf/release/egress-monitor
OUT=$ROOT/.build-perf/profile
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "profile: unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v valgrind >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
mkdir -p "$OUT"
W=$(mktemp -d /tmp/egress-profile.XXXXXX)
PIDS=()
cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# valgrind 3.19 dies in libdispatch's sigsuspend (read-only signal mask): preload a fix.
cc -shared -fPIC -O2 -o "$W/sigsuspend-shim.so" "$ROOT/Tests/Bench/sigsuspend-shim.c"

BASE=""
for b in $(seq 23000 200 29800); do
  if [ -z "$(ss -Htan "( sport >= :$b and sport <= :$((b + 110)) )")" ]; then BASE=$b; break; fi
done
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=egress profile CA" -keyout "$W/ca.key" -out "$W/ca.pem" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$W/server.key" -out "$W/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$W/san.ext"
openssl x509 -req -in "$W/server.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial -days 2 \
  -extfile "$W/san.ext" -out "$W/server.pem" 2>/dev/null
mkdir -p "$W/nginx"
{
  echo "user root; worker_processes 1; pid $W/nginx.pid; error_log $W/nginx.err warn; events { worker_connections 1024; }"
  echo "http { access_log off; ssl_protocols TLSv1.2 TLSv1.3; ssl_certificate $W/server.pem; ssl_certificate_key $W/server.key; server {"
  for i in $(seq 0 99); do echo "  listen 127.0.0.1:$((BASE + i)) ssl;"; done
  echo "  location = /v2/ { default_type application/json; add_header Docker-Distribution-API-Version registry/2.0 always; return 200 '{}'; } } }"
} > "$W/nginx.conf"
nginx -p "$W/nginx" -c "$W/nginx.conf" -e "$W/nginx.err" -g "daemon off;" > /dev/null 2>&1 & PIDS+=($!)
until curl -s -o /dev/null --cacert "$W/ca.pem" "https://127.0.0.1:$BASE/v2/"; do sleep 0.05; done

config() {  # COUNT INTERVAL PORT: COUNT targets on the nginx's 100 ports
  local sep="" i
  printf '{"listen": "127.0.0.1:%d", "interval_seconds": %d, "timeout_seconds": %d, "concurrency": 64, "discovery": false, "paths": [{"name": "direct"}], "targets": [' "$3" "$2" "$(( $2 < 10 ? $2 : 10 ))"
  for i in $(seq 0 $(($1 - 1))); do
    printf '%s{"name": "reg%04d", "kind": "registry", "url": "https://127.0.0.1:%d", "ca_file": "%s"}' "$sep" "$i" $((BASE + i % 100)) "$W/ca.pem"
    sep=", "
  done
  printf ']}\n'
}

# Runs the agent under callgrind, instrumentation off; after WARM (seconds, or a command that
# returns when the agent is ready) turns it on, runs ACTION, dumps. Prints the instructions
# counted between.
profile() {  # NAME CONFIG WARM ACTION...
  local name=$1 conf=$2 warm=$3; shift 3
  rm -f "$OUT/$name".callgrind*
  LD_PRELOAD=$W/sigsuspend-shim.so valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/$name.callgrind" \
    "$BIN" --config "$conf" --log-level warn > "$W/$name.log" 2>&1 &
  local pid=$!; PIDS+=($pid)
  local port; port=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['listen'].split(':')[1])" "$conf")
  until curl -s -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.2; done
  if [[ $warm =~ ^[0-9]+$ ]]; then sleep "$warm"; else $warm; fi
  callgrind_control -i on "$pid" > /dev/null
  callgrind_control -z "$pid" > /dev/null
  "$@"
  callgrind_control -d "$pid" > /dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true
  awk '/^summary:/ { print $2 }' "$OUT/$name.callgrind.1"
}
top() {  # FILE PER WHAT: self cost per object and the heaviest functions
  $LIB callgrind "$1" "$2" "$3" 25
}

probe_window() {
  curl -s "http://127.0.0.1:$((BASE + 101))/metrics" > "$W/p0.prom"
  sleep 30
  curl -s "http://127.0.0.1:$((BASE + 101))/metrics" > "$W/p1.prom"
}
config 20 2 $((BASE + 101)) > "$W/probe.json"
echo "profile: probe rounds (20 targets every 2 s, 30 s under callgrind)"
ir=$(profile probe "$W/probe.json" 15 probe_window)
runs=$($LIB metric-sum "$W/p1.prom" egress_probe_runs_total)
runs0=$($LIB metric-sum "$W/p0.prom" egress_probe_runs_total)
ok=$($LIB metric-sum "$W/p1.prom" egress_probe_success)
probes=$(python3 -c "print(int($runs - $runs0))")
echo "probe: $ir instructions / $probes probes ($ok of 20 pairs succeeding) = $(python3 -c "print(round($ir / $probes))") per probe (one 20-pair scrape included)"
top "$OUT/probe.callgrind.1" "$probes" probe

render_ready() {  # every pair probed once (first rounds spread over 20 s)
  local k
  for k in $(seq 300); do
    local r; r=$(curl -s "http://127.0.0.1:$((BASE + 102))/metrics" | awk '/^egress_probe_runs_total/ { s += $2 } END { print s + 0 }')
    [ "${r%.*}" -ge 2000 ] && { sleep 2; return; }
    sleep 1
  done
  echo "profile: the 2,000 pairs did not all run" >&2
}
render_window() {
  local k
  for k in $(seq 5); do curl -s -o "$W/m.txt" "http://127.0.0.1:$((BASE + 102))/metrics"; done
}
config 2000 600 $((BASE + 102)) > "$W/render.json"
echo
echo "profile: /metrics of a 2,000-pair agent (5 scrapes under callgrind; no probe runs meanwhile)"
ir=$(profile render "$W/render.json" render_ready render_window)
echo "render: $ir instructions / 5 scrapes = $(python3 -c "print(round($ir / 5))") per scrape of $(stat -c %s "$W/m.txt") bytes"
top "$OUT/render.callgrind.1" 5 scrape
