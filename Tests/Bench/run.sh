#!/usr/bin/env bash
# Performance benchmark (issue 8): every figure printed next to its peer measured in the same
# run, then medians over the runs and the ratios.
#
#   bash Tests/Bench/run.sh                 # 3 runs (about 20 minutes), builds the release binary;
#                                           # each run's figures also in .build-perf/runN.tsv
#   python3 Tests/Bench/benchlib.py report .build-perf   # the report again from those files
#   bash Tests/Bench/run.sh --runs 5
#   bash Tests/Bench/run.sh --bin PATH      # an already built egress-monitor
#   bash Tests/Bench/run.sh --only "cost startup"   # sections: cost fidelity scale wrk startup dns
#   bash Tests/Bench/run.sh --shared-stdlib         # the agent linked against the toolchain's
#                                                   # shared Swift runtime instead
#
# The agent is built as the README installs it: swift build -c release --static-swift-stdlib
# (the Swift runtime linked in; the binary needs only libc, libstdc++, libssl3, libcrypt1 and libz).
#
# Needs root (network namespaces, nft, tc). Every packet stays on loopback or in the namespaces
# this script creates; it removes them, and stops everything it started, on exit.
#
# 1. cost      60 HTTPS registry targets on loopback (nginx, 60 ports), each every second for
#              30 s: the agent's CPU per probe and peak RSS against prometheus-blackbox-exporter
#              driven at the same rate two ways: the 60 probes spread over each second, as
#              Prometheus spreads its scrapes (benchlib.py drive-spread), and in bursts of 60
#              (curl --parallel on /probe). The agent spreads its own rounds.
# 2. fidelity  injected delays: 150 ms to first byte (benchlib.py delay-server), the TLS
#              ServerHello held 100 ms (benchlib.py hold-relay in front of nginx), a namespace
#              uplink shaped with tc tbf (8 Mbit/s): the agent's phase times (check --json)
#              against the injected values, curl -w and blackbox.
# 3. scale     2,000 pairs (500 HTTPS targets in a namespace, names from a dnsmasq there, x 4
#              paths: direct, two source addresses, the veth interface) every 30 s, 150 targets
#              (30 %) blackholed by nft: scheduler lag, threads, CPU, RSS; then /metrics scrape
#              time of that agent against nginx serving the same bytes.
# 4. wrk       a 100-pair agent's /metrics under wrk, against nginx serving the same bytes.
# 5. startup   start to first /metrics answer, and the binary's size (blackbox's as the peer).
# 6. dns       cost's 60 registry targets, each every second, each under its own name
#              (rNN.bench.test, a dnsmasq behind dnsdist answering) asked of one resolver: plain
#              DNS (dnsdist's UDP listener), DoT and DoH (dnsdist's, HTTP/1.1), alternated in
#              10 s slices, 30 s each: the agent's CPU per probe, the resolver's (dnsdist +
#              dnsmasq), queries and TLS connections at the resolver per probe (issue 15).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
LIB="python3 $ROOT/Tests/Bench/benchlib.py"

RUNS=3
BIN=""
STATIC=1
ONLY="cost fidelity scale wrk startup dns"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --static-stdlib) STATIC=1; shift ;;
    --shared-stdlib) STATIC=""; shift ;;
    -h|--help) sed -n '2,39p' "$0"; exit 0 ;;
    *) echo "bench: unknown argument $1" >&2; exit 2 ;;
  esac
done
want() { [[ " $ONLY " == *" $1 "* ]]; }

[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (ip netns, nft, tc)" >&2; exit 2; }

# Program -> Debian package.
declare -A need=([nginx]=nginx [prometheus-blackbox-exporter]=prometheus-blackbox-exporter [curl]=curl
                 [wrk]=wrk [dnsmasq]=dnsmasq-base [nft]=nftables [tc]=iproute2 [ip]=iproute2
                 [openssl]=openssl [python3]=python3 [strip]=binutils [dnsdist]=dnsdist
                 [dig]=bind9-dnsutils)
missing=()
for prog in "${!need[@]}"; do command -v "$prog" >/dev/null 2>&1 || missing+=("${need[$prog]}"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -z "$BIN" ] && [ -n "$STATIC" ]; then
  echo "bench: building the release binary with the Swift runtime linked in (--static-swift-stdlib)"
  swift build -c release --static-swift-stdlib --scratch-path .build-perf-static --product egress-monitor 2>&1 | tail -1
  BIN=$ROOT/.build-perf-static/release/egress-monitor
elif [ -z "$BIN" ]; then
  echo "bench: building the release binary on the shared Swift runtime (swift build -c release --scratch-path .build-perf)"
  swift build -c release --scratch-path .build-perf --product egress-monitor 2>&1 | tail -1
  BIN=$ROOT/.build-perf/release/egress-monitor
fi
[ -x "$BIN" ] || { echo "bench: no binary at $BIN" >&2; exit 2; }
BB=$(command -v prometheus-blackbox-exporter)

W=$(mktemp -d /tmp/egress-bench.XXXXXX)
ID=$$
ID=${ID: -5}
NS_SCALE=egb-sc$ID NS_TP=egb-tp$ID
VS=egbs$ID VT=egbt$ID            # veth names: $VS"h" on the host, $VS"n" in the namespace
PIDS=()

cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  # Deleting a namespace deletes its veth end (and so the host end and its routes), its nft
  # table and its qdisc.
  ip netns del "$NS_SCALE" 2>/dev/null
  ip netns del "$NS_TP" 2>/dev/null
  ip link del "${VS}h" 2>/dev/null
  ip link del "${VT}h" 2>/dev/null
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s bench: %s\n' "$(date +%T)" "$*" >&2; }
# Starts a background process, remembering its pid for cleanup. Output goes to $W/NAME.log.
spawn() { local name=$1; shift; "$@" >"$W/$name.log" 2>&1 & LAST_PID=$!; PIDS+=("$LAST_PID"); }
stop() {
  local pid=$1
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
wait_http() {  # URL [seconds]
  local deadline=$(( $(date +%s) + ${2:-15} ))
  until curl -sf -o /dev/null --max-time 1 "$1"; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "bench: $1 did not answer" >&2; return 1; }
    sleep 0.05
  done
}
TICK=$(getconf CLK_TCK)
cpu_seconds() { awk -v t="$TICK" '{ sub(/^.*\) /, ""); split($0, f, " "); printf "%.2f\n", (f[12] + f[13]) / t }' "/proc/$1/stat"; }
sys_seconds() { awk -v t="$TICK" '{ sub(/^.*\) /, ""); split($0, f, " "); printf "%.2f\n", f[13] / t }' "/proc/$1/stat"; }
# ns on CPU of every thread of the PIDs (/proc/PID/task/*/schedstat, first field), summed.
cpu_ns() { local p; for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null; done | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
wrk_requests() { awk '/requests in/ { print $1 }' "$1"; }
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
calc() { python3 -c "import math; nan = float('nan'); print($1)"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
now_ns() { date +%s%N; }
sleep_until_ns() { local d=$(( $1 - $(now_ns) )); [ "$d" -le 0 ] || sleep "$(calc "$d / 1e9")"; }
record() { echo "$1 $2" >> "$W/run$RUN.tsv"; log "  $1 = $2"; }

# ---------------------------------------------------------------------------------- ports
BASE=""
for b in $(seq 21000 200 29800); do
  if [ -z "$(ss -Htan "( sport >= :$b and sport <= :$((b + 140)) )")" ]; then BASE=$b; break; fi
done
[ -n "$BASE" ] || { echo "bench: no free port range" >&2; exit 1; }
P_REG=$BASE                                  # nginx TLS registries: BASE .. BASE+99
P_STATIC=$((BASE + 100)) P_AGENT=$((BASE + 101)) P_BB=$((BASE + 102))
P_D150=$((BASE + 103)) P_D0=$((BASE + 104)) P_R100=$((BASE + 105)) P_R0=$((BASE + 106))
P_SCALE=$((BASE + 107)) P_WRK=$((BASE + 108)) P_START=$((BASE + 109)) P_BBSTART=$((BASE + 110))
P_PROM_CLASSIC=$((BASE + 111)) P_PROM_NATIVE=$((BASE + 112))
P_DNSMASQ=$((BASE + 113)) P_DD_PLAIN=$((BASE + 114)) P_DD_DOT=$((BASE + 115)) P_DD_DOH=$((BASE + 116))
P_DD_CONSOLE=$((BASE + 117)) P_DNS_AGENT=$((BASE + 118))

# ---------------------------------------------------------------------------------- certificates
log "work directory $W, ports $BASE-$((BASE + 118))"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=egress bench CA" \
  -keyout "$W/ca.key" -out "$W/ca.pem" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=registry.bench.test" -keyout "$W/server.key" -out "$W/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:*.bench.test\nextendedKeyUsage=serverAuth\n' > "$W/san.ext"
openssl x509 -req -in "$W/server.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial -days 2 \
  -extfile "$W/san.ext" -out "$W/server.pem" 2>/dev/null

# ---------------------------------------------------------------------------------- loopback nginx
mkdir -p "$W/nginx-lo" "$W/static"
{
  echo "user root; worker_processes 1; pid $W/nginx-lo.pid; error_log $W/nginx-lo.err warn;"
  echo "events { worker_connections 4096; }"
  echo "http { access_log off; ssl_protocols TLSv1.2 TLSv1.3; ssl_certificate $W/server.pem; ssl_certificate_key $W/server.key;"
  echo "  server {"
  for i in $(seq 0 99); do echo "    listen 127.0.0.1:$((P_REG + i)) ssl;"; done
  echo "    location = /v2/ { default_type application/json; add_header Docker-Distribution-API-Version registry/2.0 always; return 200 '{}'; }"
  echo "  }"
  # gzip as the agent compresses (level 1) when the client asks for it; plain curl does not ask.
  echo "  server { listen 127.0.0.1:$P_STATIC; root $W/static; default_type text/plain; gzip on; gzip_comp_level 1; gzip_types text/plain; }"
  echo "}"
} > "$W/nginx-lo.conf"
spawn nginx-lo nginx -p "$W/nginx-lo" -c "$W/nginx-lo.conf" -e "$W/nginx-lo.err" -g "daemon off;"
NGINX_LO_PID=$LAST_PID
until curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$P_STATIC/"; do sleep 0.05; done   # 404 on / is fine
until curl -s -o /dev/null --cacert "$W/ca.pem" "https://127.0.0.1:$P_REG/v2/"; do sleep 0.05; done

cat > "$W/blackbox.yml" <<EOF
modules:
  registry_tls:
    prober: http
    timeout: 1s
    http:
      method: GET
      valid_status_codes: [200]
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      fail_if_header_not_matches: [{header: Docker-Distribution-API-Version, regexp: "^registry/2"}]
      tls_config: {ca_file: $W/ca.pem}
  registry_plain:
    prober: http
    timeout: 5s
    http:
      method: GET
      valid_status_codes: [200]
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
  blob:
    prober: http
    timeout: 10s
    http: {method: GET, valid_status_codes: [200], preferred_ip_protocol: ip4, ip_protocol_fallback: false}
EOF
start_blackbox() {  # PORT -> pid
  spawn blackbox "$BB" --config.file="$W/blackbox.yml" --web.listen-address="127.0.0.1:$1" --log.level=error
}

# Config pieces.
registry_targets() {  # COUNT -> JSON list of TLS registry targets on the loopback nginx
  local n=$1 i sep=""
  printf '['
  for i in $(seq 0 $((n - 1))); do
    printf '%s{"name": "reg%02d", "kind": "registry", "url": "https://127.0.0.1:%d", "ca_file": "%s"}' "$sep" "$i" $((P_REG + i)) "$W/ca.pem"
    sep=", "
  done
  printf ']'
}
cat > "$W/cost.json" <<EOF
{"listen": "127.0.0.1:$P_AGENT", "interval_seconds": 1, "timeout_seconds": 1, "concurrency": 64,
 "discovery": false, "paths": [{"name": "direct"}], "targets": $(registry_targets 60)}
EOF
cat > "$W/wrk.json" <<EOF
{"listen": "127.0.0.1:$P_WRK", "interval_seconds": 30, "timeout_seconds": 10, "discovery": false,
 "paths": [{"name": "direct"}], "targets": $(registry_targets 100)}
EOF
"$BIN" validate --config "$W/cost.json" >/dev/null
"$BIN" validate --config "$W/wrk.json" >/dev/null

# ---------------------------------------------------------------------------------- fidelity peers
setup_fidelity() {
  spawn delay-server $LIB delay-server "$P_D150:150" "$P_D0:0"
  spawn relay100 $LIB hold-relay "$P_R100" "$P_REG" 100
  spawn relay0 $LIB hold-relay "$P_R0" "$P_REG" 0
  # The throughput namespace: nginx serving a 1 MiB blob as a registry, its uplink shaped.
  ip netns add "$NS_TP"
  ip link add "${VT}h" type veth peer name "${VT}n"
  ip link set "${VT}n" netns "$NS_TP"
  ip addr add 10.213.0.1/30 dev "${VT}h"; ip link set "${VT}h" up
  ip netns exec "$NS_TP" ip addr add 10.213.0.2/30 dev "${VT}n"
  ip netns exec "$NS_TP" ip link set "${VT}n" up
  ip netns exec "$NS_TP" ip link set lo up
  ip netns exec "$NS_TP" tc qdisc add dev "${VT}n" root tbf rate 8mbit burst 16kb latency 200ms
  head -c 1048576 /dev/urandom > "$W/blob"
  BLOB_DIGEST=sha256:$(sha256sum "$W/blob" | cut -d' ' -f1)
  mkdir -p "$W/nginx-tp"
  cat > "$W/nginx-tp.conf" <<EOF
user root; worker_processes 1; pid $W/nginx-tp.pid; error_log $W/nginx-tp.err warn;
events { worker_connections 256; }
http { access_log off;
  server { listen 10.213.0.2:8080;
    location = /v2/ { default_type application/json; add_header Docker-Distribution-API-Version registry/2.0 always; return 200 '{}'; }
    location = /v2/bench/blob/manifests/latest { default_type application/vnd.docker.distribution.manifest.v2+json;
      add_header Docker-Content-Digest sha256:0000000000000000000000000000000000000000000000000000000000000000 always; return 200 '{}'; }
    location = /v2/bench/blob/blobs/$BLOB_DIGEST { default_type application/octet-stream; alias $W/blob; }
  }
}
EOF
  spawn nginx-tp ip netns exec "$NS_TP" nginx -p "$W/nginx-tp" -c "$W/nginx-tp.conf" -e "$W/nginx-tp.err" -g "daemon off;"
  wait_http "http://10.213.0.2:8080/v2/"
  wait_http "http://127.0.0.1:$P_D0/v2/"
  until curl -s -o /dev/null --cacert "$W/ca.pem" "https://127.0.0.1:$P_R0/v2/"; do sleep 0.05; done
  cat > "$W/fidelity.json" <<EOF
{"listen": "127.0.0.1:1", "interval_seconds": 30, "timeout_seconds": 10, "discovery": false,
 "paths": [{"name": "direct"}],
 "targets": [
  {"name": "ttfb150", "kind": "registry", "url": "http://127.0.0.1:$P_D150"},
  {"name": "ttfb0", "kind": "registry", "url": "http://127.0.0.1:$P_D0"},
  {"name": "hello100", "kind": "registry", "url": "https://127.0.0.1:$P_R100", "ca_file": "$W/ca.pem"},
  {"name": "hello0", "kind": "registry", "url": "https://127.0.0.1:$P_R0", "ca_file": "$W/ca.pem"},
  {"name": "blob", "kind": "registry", "url": "http://10.213.0.2:8080", "image": "bench/blob:latest",
   "blob_digest": "$BLOB_DIGEST", "blob_bytes": 1048576}]}
EOF
  "$BIN" validate --config "$W/fidelity.json" >/dev/null
}

# ---------------------------------------------------------------------------------- scale namespace
setup_scale() {
  ip netns add "$NS_SCALE"
  ip link add "${VS}h" type veth peer name "${VS}n"
  ip link set "${VS}n" netns "$NS_SCALE"
  ip addr add 10.211.0.1/24 dev "${VS}h"
  ip addr add 10.211.0.11/24 dev "${VS}h"
  ip addr add 10.211.0.12/24 dev "${VS}h"
  ip link set "${VS}h" up
  ip netns exec "$NS_SCALE" ip addr add 10.211.0.2/24 dev "${VS}n"
  ip netns exec "$NS_SCALE" ip link set "${VS}n" up
  ip netns exec "$NS_SCALE" ip link set lo up
  # Every address of 10.212.0.0/23 is local in the namespace; the host reaches them by the veth.
  ip netns exec "$NS_SCALE" ip route add local 10.212.0.0/23 dev lo
  ip route add 10.212.0.0/23 via 10.211.0.2 dev "${VS}h"
  # 500 targets t000..t499 at 10.212.0.1 .. 10.212.1.244; the first 150 (30 %) blackholed.
  : > "$W/scale.hosts"
  local i
  for i in $(seq 0 499); do
    printf '10.212.%d.%d t%03d.bench.test\n' $(((i + 1) / 256)) $(((i + 1) % 256)) "$i" >> "$W/scale.hosts"
  done
  ip netns exec "$NS_SCALE" nft -f - <<EOF
table inet egbench {
  chain input { type filter hook input priority 0; policy accept; ip daddr 10.212.0.1-10.212.0.150 drop; }
}
EOF
  spawn dnsmasq ip netns exec "$NS_SCALE" dnsmasq --keep-in-foreground --no-hosts --no-resolv --user=root \
    --listen-address=10.211.0.2 --bind-interfaces --port=53 --addn-hosts="$W/scale.hosts" --cache-size=2000 \
    --pid-file="$W/dnsmasq.pid"
  mkdir -p "$W/nginx-sc"
  cat > "$W/nginx-sc.conf" <<EOF
user root; worker_processes 2; pid $W/nginx-sc.pid; error_log $W/nginx-sc.err warn;
events { worker_connections 4096; }
http { access_log off; ssl_protocols TLSv1.2 TLSv1.3; ssl_certificate $W/server.pem; ssl_certificate_key $W/server.key;
  server { listen 443 ssl;
    location = /v2/ { default_type application/json; add_header Docker-Distribution-API-Version registry/2.0 always; return 200 '{}'; }
  }
}
EOF
  spawn nginx-sc ip netns exec "$NS_SCALE" nginx -p "$W/nginx-sc" -c "$W/nginx-sc.conf" -e "$W/nginx-sc.err" -g "daemon off;"
  local n=0
  until curl -s -o /dev/null --max-time 1 --cacert "$W/ca.pem" --resolve t499.bench.test:443:10.212.1.244 https://t499.bench.test/v2/; do
    n=$((n + 1)); [ $n -lt 100 ] || { echo "bench: scale nginx did not answer" >&2; return 1; }; sleep 0.1
  done
  {
    printf '{"listen": "127.0.0.1:%d", "interval_seconds": 30, "timeout_seconds": 10,\n' "$P_SCALE"
    printf ' "phase_timeouts_seconds": {"connect": 5}, "concurrency": 256, "discovery": false,\n'
    printf ' "resolvers": [{"name": "lab", "address": "10.211.0.2:53"}],\n'
    printf ' "paths": [{"name": "direct"}, {"name": "src11", "source_address": "10.211.0.11"},\n'
    printf '           {"name": "src12", "source_address": "10.211.0.12"}, {"name": "veth", "interface": "%sh"}],\n' "$VS"
    printf ' "targets": ['
    local sep=""
    for i in $(seq 0 499); do
      printf '%s\n  {"name": "t%03d", "kind": "registry", "url": "https://t%03d.bench.test", "resolver": "lab", "ca_file": "%s"}' "$sep" "$i" "$i" "$W/ca.pem"
      sep=","
    done
    printf ']}\n'
  } > "$W/scale.json"
  "$BIN" validate --config "$W/scale.json" >/dev/null
}

# ---------------------------------------------------------------------------------- dns resolver
# dnsdist (plain UDP, DoT, DoH over HTTP/1.1) in front of a dnsmasq that answers the 60 names
# r00..r59.bench.test with 127.0.0.1, and NODATA to their AAAA questions (--local: without it,
# a dnsmasq with no upstream answers REFUSED, which the agent's plain client asks again and its
# DoT/DoH client does not: 3 queries a round against 2). The server certificate covers *.bench.test; the agent reaches the DoH host by the
# resolver's `address`, so no other resolver is asked for it. No packet cache in dnsdist, so
# every query goes to the dnsmasq, as it would to a real resolver's backend.
setup_dns() {
  local i
  : > "$W/dns.hosts"
  for i in $(seq 0 59); do printf '127.0.0.1 r%02d.bench.test\n' "$i" >> "$W/dns.hosts"; done
  spawn dns-dnsmasq dnsmasq --keep-in-foreground --no-hosts --no-resolv --user=root \
    --listen-address=127.0.0.1 --bind-interfaces --port="$P_DNSMASQ" --addn-hosts="$W/dns.hosts" --local=/bench.test/ \
    --pid-file="$W/dns-dnsmasq.pid"
  DNSMASQ_PID=$LAST_PID
  # As the lab's LabDnsdist: no security poll (a query to a public name), its own plain
  # listener (without one it listens on port 53), checked before it starts.
  cat > "$W/dnsdist.conf" <<EOC
setSecurityPollSuffix("")
setLocal("127.0.0.1:$P_DD_PLAIN")
newServer({address="127.0.0.1:$P_DNSMASQ", healthCheckMode="up"})
addTLSLocal("127.0.0.1:$P_DD_DOT", "$W/server.pem", "$W/server.key")
addDOHLocal("127.0.0.1:$P_DD_DOH", "$W/server.pem", "$W/server.key", "/dns-query")
controlSocket("127.0.0.1:$P_DD_CONSOLE")
setKey("$(openssl rand -base64 32)")
EOC
  dnsdist --check-config -C "$W/dnsdist.conf" >/dev/null
  spawn dnsdist dnsdist --supervised --disable-syslog -C "$W/dnsdist.conf"
  DNSDIST_PID=$LAST_PID
  local n=0
  until [ "$(dig +short +time=1 +tries=1 -p "$P_DD_PLAIN" @127.0.0.1 r59.bench.test 2>/dev/null)" = 127.0.0.1 ] \
        && dd_console 'showVersion()' >/dev/null 2>&1; do
    n=$((n + 1)); [ $n -lt 100 ] || { echo "bench: dnsdist did not answer" >&2; return 1; }; sleep 0.1
  done
  local variant resolver
  for variant in plain dot doh; do
    case $variant in
      plain) resolver="{\"name\": \"lab\", \"address\": \"127.0.0.1:$P_DD_PLAIN\"}" ;;
      dot) resolver="{\"name\": \"lab\", \"dot\": \"127.0.0.1:$P_DD_DOT\", \"tls_name\": \"dns.bench.test\", \"ca_file\": \"$W/ca.pem\"}" ;;
      doh) resolver="{\"name\": \"lab\", \"doh\": \"https://dns.bench.test:$P_DD_DOH/dns-query\", \"address\": \"127.0.0.1\", \"ca_file\": \"$W/ca.pem\"}" ;;
    esac
    {
      printf '{"listen": "127.0.0.1:%d", "interval_seconds": 1, "timeout_seconds": 1, "concurrency": 64,\n' "$P_DNS_AGENT"
      printf ' "discovery": false, "paths": [{"name": "direct"}], "resolvers": [%s],\n "targets": [' "$resolver"
      local sep=""
      for i in $(seq 0 59); do
        printf '%s\n  {"name": "reg%02d", "kind": "registry", "url": "https://r%02d.bench.test:%d", "resolver": "lab", "ca_file": "%s"}' \
          "$sep" "$i" "$i" $((P_REG + i)) "$W/ca.pem"
        sep=","
      done
      printf ']}\n'
    } > "$W/dns-$variant.json"
    "$BIN" validate --config "$W/dns-$variant.json" >/dev/null
  done
}
# dnsdist's console (`dnsdist -c`): its counters.
dd_console() { dnsdist -C "$W/dnsdist.conf" -c -e "$1"; }
# Queries dnsdist received on every listener since it started (dumpStats' `queries`).
dd_queries() { dd_console 'dumpStats()' | tr -s ' \t' '\n\n' | awk 'prev == "queries" { print; exit } { prev = $0 }'; }
# TLS handshakes completed on the listener at PORT since it started: showTCPStats()'s "TLS new
# sessions" + "TLS Resumptions" of that frontend (the DoH one included): one per connection.
dd_handshakes() { dd_console 'showTCPStats()' | awk -v a="127.0.0.1:$1" '$2 == a { n += $12 + $13 } END { print n + 0 }'; }
dd_resumptions() { dd_console 'showTCPStats()' | awk -v a="127.0.0.1:$1" '$2 == a { n += $13 } END { print n + 0 }'; }

# ================================================================================== sections

section_cost() {
  log "1. cost per probe: agent"
  local pid t0 c0 c1 k0 k1 r0 r1 ok
  spawn agent-cost "$BIN" --config "$W/cost.json" --log-level warn; pid=$LAST_PID
  wait_http "http://127.0.0.1:$P_AGENT/metrics"
  sleep 3
  curl -s "http://127.0.0.1:$P_AGENT/metrics" > "$W/cost0.prom"; c0=$(cpu_seconds "$pid"); k0=$(sys_seconds "$pid"); t0=$(now_ns)
  sleep 30
  curl -s "http://127.0.0.1:$P_AGENT/metrics" > "$W/cost1.prom"; c1=$(cpu_seconds "$pid"); k1=$(sys_seconds "$pid")
  local secs; secs=$(calc "($(now_ns) - $t0) / 1e9")
  r0=$($LIB metric-sum "$W/cost0.prom" egress_probe_runs_total)
  r1=$($LIB metric-sum "$W/cost1.prom" egress_probe_runs_total)
  ok=$($LIB metric-sum "$W/cost1.prom" egress_probe_success)
  record agent_cpu_ms_per_probe "$(calc "($c1 - $c0) * 1000 / ($r1 - $r0)")"
  record agent_sys_ms_per_probe "$(calc "($k1 - $k0) * 1000 / ($r1 - $r0)")"
  record agent_hwm_mib "$(calc "$(status_kib "$pid" VmHWM) / 1024")"
  record agent_rss_anon_mib "$(calc "$(status_kib "$pid" RssAnon) / 1024")"
  record agent_rss_file_mib "$(calc "$(status_kib "$pid" RssFile) / 1024")"
  record agent_probes_per_s "$(calc "($r1 - $r0) / $secs")"
  record agent_probe_ok_ratio "$(calc "$ok / 60")"
  stop "$pid"

  log "1. cost per probe: blackbox_exporter"
  start_blackbox "$P_BB"; pid=$LAST_PID
  wait_http "http://127.0.0.1:$P_BB/metrics"
  : > "$W/bb-urls.cfg"
  local i
  for i in $(seq 0 59); do
    printf 'url = "http://127.0.0.1:%d/probe?module=registry_tls&target=https://127.0.0.1:%d/v2/"\n' "$P_BB" $((P_REG + i)) >> "$W/bb-urls.cfg"
  done
  drive() {  # ROUNDS OUT: one round of 60 probes a second
    local start; start=$(now_ns)
    local k; local -a curls=()
    for k in $(seq 0 $(($1 - 1))); do
      sleep_until_ns $((start + k * 1000000000))
      curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max 60 -K "$W/bb-urls.cfg" >> "$2" &
      curls+=($!)
    done
    wait "${curls[@]}"
  }
  # PREFIX DRIVE...: blackbox's CPU, kernel time, rate and successes while DRIVE... OUT runs.
  measure_bb() {
    local prefix=$1 out="$W/$1.txt"; shift
    local c0 c1 k0 k1 t0 secs probes okp
    : > "$out"
    c0=$(cpu_seconds "$pid"); k0=$(sys_seconds "$pid"); t0=$(now_ns)
    "$@" "$out"
    c1=$(cpu_seconds "$pid"); k1=$(sys_seconds "$pid"); secs=$(calc "($(now_ns) - $t0) / 1e9")
    probes=$(grep -c '^probe_success ' "$out" || true)
    okp=$(grep -c '^probe_success 1' "$out" || true)
    record "${prefix}_cpu_ms_per_probe" "$(calc "($c1 - $c0) * 1000 / max($probes, 1)")"
    record "${prefix}_sys_ms_per_probe" "$(calc "($k1 - $k0) * 1000 / max($probes, 1)")"
    record "${prefix}_probes_per_s" "$(calc "$probes / $secs")"
    record "${prefix}_probe_ok_ratio" "$(calc "$okp / max($probes, 1)")"
  }
  # Spread over each second, as Prometheus spreads 60 probe targets' scrapes (and as the agent
  # spreads its 60 pairs): every handshake then starts on cold caches. Each way of driving it
  # gets a fresh blackbox_exporter, so each peak RSS (VmHWM) belongs to its own mode: the agent's
  # (spread) is judged against the spread one, the burst one is printed beside it.
  $LIB drive-spread "$W/bb-urls.cfg" 3 "$W/bb-warm.txt"
  measure_bb bb_spread $LIB drive-spread "$W/bb-urls.cfg" 30
  record bb_spread_hwm_mib "$(calc "$(status_kib "$pid" VmHWM) / 1024")"
  stop "$pid"
  start_blackbox "$P_BB"; pid=$LAST_PID
  wait_http "http://127.0.0.1:$P_BB/metrics"
  drive 3 "$W/bb-warm.txt"
  measure_bb bb drive 30
  record bb_hwm_mib "$(calc "$(status_kib "$pid" VmHWM) / 1024")"
  stop "$pid"
}

section_fidelity() {
  log "2. timing fidelity"
  local pid k
  start_blackbox "$P_BB"; pid=$LAST_PID
  wait_http "http://127.0.0.1:$P_BB/metrics"
  local -a a_http a_http0 a_tls a_tls0 a_blob c_http c_http0 c_tls c_tls0 c_blob b_http b_http0 b_tls b_tls0 b_blob
  bbq() {  # MODULE TARGET -> exposition file
    curl -s "http://127.0.0.1:$P_BB/probe?module=$1&target=$2" > "$W/bbq.prom"
    grep -q '^probe_success 1' "$W/bbq.prom" || echo "bench: blackbox probe of $2 failed" >&2
  }
  bbphase() { $LIB metric-sum "$W/bbq.prom" probe_http_duration_seconds "phase=$1"; }
  for k in 1 2 3 4 5; do
    # The agent: one target at a time, so probes do not share the CPU.
    for t in ttfb150 ttfb0 hello100 hello0; do
      "$BIN" check --config "$W/fidelity.json" --json --target "$t" > "$W/check-$t.json" 2>>"$W/check.log" || true
    done
    a_http+=("$(calc "$($LIB check-phase "$W/check-ttfb150.json" ttfb150 http) * 1000")")
    a_http0+=("$(calc "$($LIB check-phase "$W/check-ttfb0.json" ttfb0 http) * 1000")")
    a_tls+=("$(calc "$($LIB check-phase "$W/check-hello100.json" hello100 tls) * 1000")")
    a_tls0+=("$(calc "$($LIB check-phase "$W/check-hello0.json" hello0 tls) * 1000")")
    # curl: to first byte after the request was sent; TLS from connected to handshake done.
    local w
    w=$(curl -s -o /dev/null -w '%{time_pretransfer} %{time_starttransfer}' "http://127.0.0.1:$P_D150/v2/")
    c_http+=("$(calc "(${w#* } - ${w% *}) * 1000")")
    w=$(curl -s -o /dev/null -w '%{time_pretransfer} %{time_starttransfer}' "http://127.0.0.1:$P_D0/v2/")
    c_http0+=("$(calc "(${w#* } - ${w% *}) * 1000")")
    w=$(curl -s -o /dev/null --cacert "$W/ca.pem" -w '%{time_connect} %{time_appconnect}' "https://127.0.0.1:$P_R100/v2/")
    c_tls+=("$(calc "(${w#* } - ${w% *}) * 1000")")
    w=$(curl -s -o /dev/null --cacert "$W/ca.pem" -w '%{time_connect} %{time_appconnect}' "https://127.0.0.1:$P_R0/v2/")
    c_tls0+=("$(calc "(${w#* } - ${w% *}) * 1000")")
    # blackbox: "processing" is request written to first response byte.
    bbq registry_plain "http://127.0.0.1:$P_D150/v2/"; b_http+=("$(calc "$(bbphase processing) * 1000")")
    bbq registry_plain "http://127.0.0.1:$P_D0/v2/"; b_http0+=("$(calc "$(bbphase processing) * 1000")")
    bbq registry_tls "https://127.0.0.1:$P_R100/v2/"; b_tls+=("$(calc "$(bbphase tls) * 1000")")
    bbq registry_tls "https://127.0.0.1:$P_R0/v2/"; b_tls0+=("$(calc "$(bbphase tls) * 1000")")
  done
  for k in 1 2 3; do
    "$BIN" check --config "$W/fidelity.json" --json --target blob > "$W/check-blob.json" 2>>"$W/check.log" || true
    a_blob+=("$(calc "$($LIB check-field "$W/check-blob.json" blob blob_bytes_per_second) / 1000")")
    w=$(curl -s -o /dev/null -w '%{speed_download}' "http://10.213.0.2:8080/v2/bench/blob/blobs/$BLOB_DIGEST")
    c_blob+=("$(calc "$w / 1000")")
    bbq blob "http://10.213.0.2:8080/v2/bench/blob/blobs/$BLOB_DIGEST"
    b_blob+=("$(calc "$($LIB metric-sum "$W/bbq.prom" probe_http_uncompressed_body_length) / $(bbphase transfer) / 1000")")
  done
  stop "$pid"
  record fid_http_agent_ms "$(median "${a_http[@]}")"
  record fid_http_curl_ms "$(median "${c_http[@]}")"
  record fid_http_bb_ms "$(median "${b_http[@]}")"
  record fid_http_base_agent_ms "$(median "${a_http0[@]}")"
  record fid_http_base_curl_ms "$(median "${c_http0[@]}")"
  record fid_http_base_bb_ms "$(median "${b_http0[@]}")"
  record fid_tls_agent_ms "$(median "${a_tls[@]}")"
  record fid_tls_curl_ms "$(median "${c_tls[@]}")"
  record fid_tls_bb_ms "$(median "${b_tls[@]}")"
  record fid_tls_base_agent_ms "$(median "${a_tls0[@]}")"
  record fid_tls_base_curl_ms "$(median "${c_tls0[@]}")"
  record fid_tls_base_bb_ms "$(median "${b_tls0[@]}")"
  record fid_http_delta_agent_ms "$(calc "$(median "${a_http[@]}") - $(median "${a_http0[@]}")")"
  record fid_http_delta_curl_ms "$(calc "$(median "${c_http[@]}") - $(median "${c_http0[@]}")")"
  record fid_http_delta_bb_ms "$(calc "$(median "${b_http[@]}") - $(median "${b_http0[@]}")")"
  record fid_tls_delta_agent_ms "$(calc "$(median "${a_tls[@]}") - $(median "${a_tls0[@]}")")"
  record fid_tls_delta_curl_ms "$(calc "$(median "${c_tls[@]}") - $(median "${c_tls0[@]}")")"
  record fid_tls_delta_bb_ms "$(calc "$(median "${b_tls[@]}") - $(median "${b_tls0[@]}")")"
  record fid_blob_agent_kBps "$(median "${a_blob[@]}")"
  record fid_blob_curl_kBps "$(median "${c_blob[@]}")"
  record fid_blob_bb_kBps "$(median "${b_blob[@]}")"
}

section_scale() {
  log "3. scale: 2,000 pairs, 30 s interval, 30 % blackholed"
  local pid t0 t1 c0 c1 k0 k1 r0 r1 secs k
  spawn agent-scale "$BIN" --config "$W/scale.json" --log-level warn; pid=$LAST_PID
  wait_http "http://127.0.0.1:$P_SCALE/metrics"
  # First rounds are spread over 20 s; blackholed ones end 5 s later.
  sleep 32
  curl -s "http://127.0.0.1:$P_SCALE/metrics" > "$W/scale0.prom"; c0=$(cpu_seconds "$pid"); k0=$(sys_seconds "$pid"); t0=$(now_ns)
  # Two intervals, scraped every 15 s as Prometheus would.
  for k in 1 2 3 4; do
    sleep_until_ns $((t0 + k * 15000000000))
    curl -s "http://127.0.0.1:$P_SCALE/metrics" > "$W/scale$k.prom"
  done
  c1=$(cpu_seconds "$pid"); k1=$(sys_seconds "$pid"); t1=$(now_ns)
  secs=$(calc "($t1 - $t0) / 1e9")
  local q; q=$($LIB hist "$W/scale0.prom" "$W/scale4.prom" egress_scheduler_lag_seconds 0.5 0.99)
  set -- $q
  record scale_lag_p50_ms "$(calc "$1 * 1000")"
  record scale_lag_p99_ms "$(calc "$2 * 1000")"
  record scale_threads "$(status_kib "$pid" Threads)"
  record scale_cpu_pct "$(calc "($c1 - $c0) * 100 / $secs")"
  record scale_sys_pct "$(calc "($k1 - $k0) * 100 / $secs")"
  record scale_rss_mib "$(calc "$(status_kib "$pid" VmRSS) / 1024")"
  record scale_hwm_mib "$(calc "$(status_kib "$pid" VmHWM) / 1024")"
  record scale_rss_anon_mib "$(calc "$(status_kib "$pid" RssAnon) / 1024")"
  record scale_rss_file_mib "$(calc "$(status_kib "$pid" RssFile) / 1024")"
  r0=$($LIB metric-sum "$W/scale0.prom" egress_probe_runs_total)
  r1=$($LIB metric-sum "$W/scale4.prom" egress_probe_runs_total)
  record scale_probes_per_s "$(calc "($r1 - $r0) / $secs")"
  record scale_ok_pairs "$($LIB metric-sum "$W/scale4.prom" egress_probe_success)"
  if [ -f "$W/run$RUN.tsv" ] && grep -q '^bb_cpu_ms_per_probe ' "$W/run$RUN.tsv"; then
    local bbc bbs
    bbc=$(awk '$1 == "bb_cpu_ms_per_probe" { print $2 }' "$W/run$RUN.tsv")
    bbs=$(awk '$1 == "bb_spread_cpu_ms_per_probe" { print $2 }' "$W/run$RUN.tsv")
    record scale_bb_equiv_cpu_pct "$(calc "($r1 - $r0) / $secs * $bbs / 10")"
    record scale_bb_burst_equiv_cpu_pct "$(calc "($r1 - $r0) / $secs * $bbc / 10")"
  fi

  log "4. /metrics of the 2,000-pair agent"
  local -a total ttfb stat
  curl -s "http://127.0.0.1:$P_SCALE/metrics" > "$W/static/m2000.txt"
  for k in 1 2 3 4 5 6 7; do
    local w; w=$(curl -s -o /dev/null -w '%{time_starttransfer} %{time_total}' "http://127.0.0.1:$P_SCALE/metrics")
    ttfb+=("$(calc "${w% *} * 1000")"); total+=("$(calc "${w#* } * 1000")")
    w=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$P_STATIC/m2000.txt")
    stat+=("$(calc "$w * 1000")")
  done
  record render2000_ms "$(median "${total[@]}")"
  record render2000_static_ms "$(median "${stat[@]}")"
  record render2000_mb "$(calc "$(stat -c %s "$W/static/m2000.txt") / 1e6")"
  scrape_formats "$pid"
  central_series
  stop "$pid"
}

# The 2,000-pair agent's /metrics as text, gzip and protobuf (native histograms); the agent's
# CPU per gzip scrape (the probing CPU of an equally long pause taken off) beside nginx
# gzip-compressing the same text file at the same level.
scrape_formats() {  # AGENT_PID
  log "4b. /metrics of the 2,000-pair agent: text, gzip, protobuf; CPU per scrape"
  local pid=$1 pb='Accept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited'
  curl -s -H 'Accept-Encoding: gzip' -o "$W/m2000.gz" "http://127.0.0.1:$P_SCALE/metrics"
  curl -s -H "$pb" -o "$W/m2000.pb" "http://127.0.0.1:$P_SCALE/metrics"
  local tb gb pbb
  tb=$(stat -c %s "$W/static/m2000.txt"); gb=$(stat -c %s "$W/m2000.gz"); pbb=$(stat -c %s "$W/m2000.pb")
  record scrape2000_gzip_mb "$(calc "$gb / 1e6")"
  record scrape2000_protobuf_mb "$(calc "$pbb / 1e6")"
  record scrape2000_gzip_over_text "$(calc "$gb / $tb")"
  # CPU per gzip scrape, from the scheduler's nanosecond accounting (/proc/PID/task/*/schedstat,
  # first field: ns on CPU), not /proc/PID/stat's 10 ms ticks, which a scrape of a few ms falls
  # between. Five repetitions of the same wrk load (one connection, as Prometheus scrapes a
  # target one scrape at a time, gzip asked for) on the agent and on nginx gzip-compressing the
  # same text at the same level: ns on CPU over the run / scrapes wrk completed. The agent keeps
  # probing its 2,000 pairs meanwhile: its CPU over an equally long pause right after is taken
  # off. Threads that exit during a run take their time with them (the agent's pool threads and
  # nginx's worker do not).
  local workers; workers=$(pgrep -P "$NGINX_LO_PID" | tr '\n' ' ')
  local -a agent_us nginx_us
  local k a0 a1 a2 t0 t1 n0 n1 scrapes
  for k in 1 2 3 4 5; do
    a0=$(cpu_ns "$pid"); t0=$(now_ns)
    wrk -t1 -c1 -d3s -H 'Accept-Encoding: gzip' "http://127.0.0.1:$P_SCALE/metrics" > "$W/wrk-gz-agent.txt" 2>&1
    a1=$(cpu_ns "$pid"); t1=$(now_ns)
    sleep_until_ns $((t1 + t1 - t0)); a2=$(cpu_ns "$pid")
    scrapes=$(wrk_requests "$W/wrk-gz-agent.txt")
    agent_us+=("$(calc "max(0, ($a1 - $a0) - ($a2 - $a1)) / 1e3 / max($scrapes, 1)")")
    n0=$(cpu_ns $workers)
    wrk -t1 -c1 -d3s -H 'Accept-Encoding: gzip' "http://127.0.0.1:$P_STATIC/m2000.txt" > "$W/wrk-gz-nginx.txt" 2>&1
    n1=$(cpu_ns $workers)
    nginx_us+=("$(calc "($n1 - $n0) / 1e3 / max($(wrk_requests "$W/wrk-gz-nginx.txt"), 1)")")
    log "   rep $k: agent ${agent_us[-1]} us/scrape ($scrapes scrapes), nginx ${nginx_us[-1]} us/scrape ($(wrk_requests "$W/wrk-gz-nginx.txt") scrapes)"
  done
  record scrape2000_gzip_cpu_us "$(median "${agent_us[@]}")"
  record scrape2000_nginx_gzip_cpu_us "$(median "${nginx_us[@]}")"
  record scrape2000_gzip_cpu_over_nginx "$(calc "$(median "${agent_us[@]}") / max($(median "${nginx_us[@]}"), 1e-9)")"
}

# A central Prometheus scraping the 2,000-pair agent every 5 s for 30 s: without native
# histograms (OpenMetrics, the classic buckets) and with them (protobuf; Prometheus 2.42 then
# keeps only the native histogram of a histogram, i.e. native-only): head series and RSS.
central_series() {
  log "4c. central Prometheus: series and RSS for 2,000 pairs, classic against native-only"
  local mode port ppid
  declare -A prom_pid
  for mode in classic native; do
    port=$P_PROM_CLASSIC; [ "$mode" = native ] && port=$P_PROM_NATIVE
    printf 'global: {scrape_interval: 5s, scrape_timeout: 5s}\nscrape_configs:\n  - job_name: egress-monitor\n    static_configs: [{targets: ["127.0.0.1:%s"]}]\n' "$P_SCALE" > "$W/prom-$mode.yml"
    local -a flags=()
    [ "$mode" = native ] && flags=(--enable-feature=native-histograms)
    spawn "prom-$mode" prometheus --config.file="$W/prom-$mode.yml" --storage.tsdb.path="$W/prom-$mode" \
      --web.listen-address="127.0.0.1:$port" --log.level=warn "${flags[@]}"
    prom_pid[$mode]=$LAST_PID
  done
  sleep 30
  for mode in classic native; do
    port=$P_PROM_CLASSIC; [ "$mode" = native ] && port=$P_PROM_NATIVE
    # Its own /metrics: the gauge is not in its TSDB unless it scrapes itself.
    record "central_${mode}_series" "$(curl -s "http://127.0.0.1:$port/metrics" | awk '$1 == "prometheus_tsdb_head_series" { print $2 }')"
    record "central_${mode}_rss_mib" "$(calc "$(status_kib "${prom_pid[$mode]}" VmRSS) / 1024")"
    stop "${prom_pid[$mode]}"
  done
}

wrk_figures() {  # URL PREFIX [HEADER]
  wrk -t2 -c8 -d8s --latency ${3:+-H "$3"} "$1" > "$W/wrk.txt" 2>&1
  record "$2_rps" "$(awk '/^Requests\/sec:/ { print $2 }' "$W/wrk.txt")"
  local p99; p99=$(awk '$1 == "99%" { print $2 }' "$W/wrk.txt")
  record "$2_p99_ms" "$(python3 -c "
import re, sys; v = sys.argv[1]; m = re.fullmatch(r'([0-9.]+)(us|ms|s|m)', v)
print(float(m.group(1)) * {'us': 1e-3, 'ms': 1, 's': 1e3, 'm': 6e4}[m.group(2)])" "$p99")"
}

section_wrk() {
  log "4. /metrics of a 100-pair agent under wrk"
  local pid
  spawn agent-wrk "$BIN" --config "$W/wrk.json" --log-level warn; pid=$LAST_PID
  wait_http "http://127.0.0.1:$P_WRK/metrics"
  sleep 3  # first rounds (2 s jitter window) so every series has its histograms
  curl -s "http://127.0.0.1:$P_WRK/metrics" > "$W/static/m100.txt"
  record wrk100_kb "$(calc "$(stat -c %s "$W/static/m100.txt") / 1e3")"
  wrk_figures "http://127.0.0.1:$P_WRK/metrics" wrk100
  wrk_figures "http://127.0.0.1:$P_STATIC/m100.txt" wrk100_static
  wrk_figures "http://127.0.0.1:$P_WRK/metrics" wrk100_gzip "Accept-Encoding: gzip"
  wrk_figures "http://127.0.0.1:$P_STATIC/m100.txt" wrk100_static_gzip "Accept-Encoding: gzip"
  stop "$pid"
}

section_startup() {
  log "5. start to first /metrics answer, binary size"
  local -a a b
  local k
  for k in 1 2 3 4 5; do
    a+=("$(calc "$($LIB startup "http://127.0.0.1:$P_START/metrics" "$BIN" --config "$W/cost.json" --listen "127.0.0.1:$P_START" --log-level error) * 1000")")
    b+=("$(calc "$($LIB startup "http://127.0.0.1:$P_BBSTART/metrics" "$BB" --config.file="$W/blackbox.yml" --web.listen-address="127.0.0.1:$P_BBSTART" --log.level=error) * 1000")")
  done
  record startup_ms "$(median "${a[@]}")"
  record bb_startup_ms "$(median "${b[@]}")"
  record binary_mib "$(calc "$(stat -c %s "$BIN") / 1048576")"
  strip -o "$W/stripped" "$BIN"
  record binary_stripped_mib "$(calc "$(stat -c %s "$W/stripped") / 1048576")"
  record bb_binary_mib "$(calc "$(stat -c %s "$BB") / 1048576")"
  log "   the agent's binary needs: $(readelf -d "$BIN" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
}

# The cost of an encrypted resolver (issue 15). What a round asks: each of the 60 targets has its
# own name, and the agent keeps no answer between rounds (only /etc/hosts and resolv.conf are
# cached), so every round of every target looks its name up anew, A then AAAA (2 queries at the
# resolver per probe, printed as a check), then connects, handshakes with nginx and GETs /v2/, as
# the cost section's probes. Over DoT and DoH a lookup opens one TLS connection to the resolver,
# asks both questions on it and closes it (README: no reuse between lookups), so the TLS
# handshakes at dnsdist per probe (printed) should be 1. The three variants run in turn in 10 s
# slices, three times in rotated order, each on a fresh agent (3 s of first rounds first), so a
# change in the machine's load falls on all three alike. CPU is the agent's utime+stime from
# /proc/PID/stat as in the cost section (it counts threads that exited), the resolver's from
# schedstat (dnsdist's threads live as long as it does; dnsmasq answers UDP in its main process).
section_dns() {
  log "6. DNS: CPU per probe with a plain, a DoT and a DoH resolver, alternated in 10 s slices"
  local v k order tally="$W/dns-tally$RUN.txt"
  : > "$tally"
  for k in 0 1 2; do
    case $k in 0) order="plain dot doh" ;; 1) order="dot doh plain" ;; 2) order="doh plain dot" ;; esac
    for v in $order; do dns_slice "$v" 10 "$tally"; done
  done
  # Sums over the three slices of each variant: the ratios are of sums, not of slice ratios.
  local n f cpu rcpu q hs res secs
  for v in plain dot doh; do
    read -r n f cpu rcpu q hs res secs < <(awk -v v="$v" '$1 == v { for (i = 2; i <= 9; i++) s[i] += $i }
      END { for (i = 2; i <= 9; i++) printf "%.3f ", s[i]; print "" }' "$tally")
    record "dns_${v}_cpu_ms_per_probe" "$(calc "$cpu * 1000 / max($n, 1)")"
    record "dns_${v}_resolver_cpu_ms_per_probe" "$(calc "$rcpu / 1e6 / max($n, 1)")"
    record "dns_${v}_queries_per_probe" "$(calc "$q / max($n, 1)")"
    record "dns_${v}_probes_per_s" "$(calc "$n / $secs")"
    record "dns_${v}_probe_ok_ratio" "$(calc "1 - $f / max($n, 1)")"
    if [ "$v" != plain ]; then
      record "dns_${v}_conns_per_probe" "$(calc "$hs / max($n, 1)")"
      record "dns_${v}_resumed_per_probe" "$(calc "$res / max($n, 1)")"
    fi
  done
}

# Sum of a family's samples in an exposition (awk: a python start per figure would take seconds
# on a loaded host, between slices).
prom_sum() { awk -v n="$2" '{ name = $1; sub(/\{.*/, "", name) } name == n { s += $NF } END { printf "%.0f\n", s }' "$1"; }

# VARIANT SECONDS TALLY: a fresh agent on that variant's config, measured over SECONDS; appends
# "variant probes failed agent_cpu_s resolver_cpu_ns queries handshakes resumptions seconds" to
# TALLY. dnsdist's console is read just outside the CPU window (it costs dnsdist CPU); a probe
# is counted when its round ends, its queries when it starts, so a few probes at each edge of a
# window fall on the other side (about 1 % at 60 probes a second).
dns_slice() {
  local v=$1 port="" pid c0 c1 r0 r1 q0 q1 h0=0 h1=0 s0=0 s1=0 t0 t1 n f
  [ "$v" = dot ] && port=$P_DD_DOT
  [ "$v" = doh ] && port=$P_DD_DOH
  spawn "agent-dns-$v" "$BIN" --config "$W/dns-$v.json" --log-level warn; pid=$LAST_PID
  wait_http "http://127.0.0.1:$P_DNS_AGENT/metrics"
  sleep 3
  q0=$(dd_queries)
  [ -z "$port" ] || { h0=$(dd_handshakes "$port"); s0=$(dd_resumptions "$port"); }
  curl -s "http://127.0.0.1:$P_DNS_AGENT/metrics" > "$W/dns0.prom"
  c0=$(cpu_seconds "$pid"); r0=$(cpu_ns "$DNSDIST_PID" "$DNSMASQ_PID"); t0=$(now_ns)
  sleep "$2"
  curl -s "http://127.0.0.1:$P_DNS_AGENT/metrics" > "$W/dns1.prom"
  c1=$(cpu_seconds "$pid"); r1=$(cpu_ns "$DNSDIST_PID" "$DNSMASQ_PID"); t1=$(now_ns)
  q1=$(dd_queries)
  [ -z "$port" ] || { h1=$(dd_handshakes "$port"); s1=$(dd_resumptions "$port"); }
  stop "$pid"
  n=$(( $(prom_sum "$W/dns1.prom" egress_probe_runs_total) - $(prom_sum "$W/dns0.prom" egress_probe_runs_total) ))
  f=$(( $(prom_sum "$W/dns1.prom" egress_probe_failures_total) - $(prom_sum "$W/dns0.prom" egress_probe_failures_total) ))
  awk -v v="$v" -v n="$n" -v f="$f" -v c0="$c0" -v c1="$c1" -v r=$((r1 - r0)) -v q=$((q1 - q0)) -v h=$((h1 - h0)) \
      -v s=$((s1 - s0)) -v t=$((t1 - t0)) \
      'BEGIN { printf "%s %d %d %.2f %.0f %d %d %d %.3f\n", v, n, f, c1 - c0, r, q, h, s, t / 1e9 }' >> "$3"
  log "   $v: $(tail -1 "$3" | awk '{ printf "%d probes (%d failed), agent %.2f ms/probe, resolver %.3f ms/probe, %.2f queries and %.2f TLS handshakes (%d resumed) per probe", $2, $3, $4 * 1000 / ($2 > 0 ? $2 : 1), $5 / 1e6 / ($2 > 0 ? $2 : 1), $6 / ($2 > 0 ? $2 : 1), $7 / ($2 > 0 ? $2 : 1), $8 }')"
}

# ================================================================================== runs
want fidelity && setup_fidelity
want scale && setup_scale
want dns && setup_dns
for RUN in $(seq 1 "$RUNS"); do
  log "=== run $RUN of $RUNS"
  : > "$W/run$RUN.tsv"
  want cost && section_cost
  want fidelity && section_fidelity
  want scale && section_scale
  want wrk && section_wrk
  want startup && section_startup
  want dns && section_dns
  # Kept as each run ends: a run that fails later does not lose the earlier ones.
  mkdir -p "$ROOT/.build-perf"
  cp "$W/run$RUN.tsv" "$ROOT/.build-perf/"
done
$LIB report "$W"
