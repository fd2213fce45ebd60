#!/usr/bin/env bash
# Looks at the status page as a person would: starts a small lab on 127.0.0.1 (nginx as a
# healthy registry, a rate-limited mirror and a captive portal; socat closing TLS right after
# the ClientHello, as SNI filtering does; tinyproxy as a corporate proxy; dnsmasq as a resolver
# that refuses Docker Hub's name; a SOCKS port nobody listens on), runs the agent against it,
# and renders `/` with headless Chromium, at desktop and at phone width. Then prints what
# `check` and `suggest` say about the same lab. Not part of the test suite.
#
#   bash Tests/Lab/screenshot.sh [OUT_PREFIX]    # writes OUT_PREFIX-desktop.png, OUT_PREFIX-phone.png
#
# Needs: chromium, nginx, socat, tinyproxy, dnsmasq, openssl, curl (Debian packages; the
# script installs chromium when it is missing and it runs as root). EGRESS_BIN names the binary
# (default: builds with `swift build --scratch-path .build-human`). Nothing leaves 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix=${1:-/tmp/egress-status}

if ! command -v chromium >/dev/null; then
  [ "$(id -u)" -eq 0 ] || { echo "chromium is missing: apt-get install chromium" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
for p in nginx socat tinyproxy dnsmasq openssl curl; do
  command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] || { echo "$p is missing" >&2; exit 1; }
done
export PATH="$PATH:/usr/sbin:/sbin"

bin=${EGRESS_BIN:-}
if [ -z "$bin" ]; then
  swift build --scratch-path .build-human >/dev/null
  bin=.build-human/debug/egress-monitor
fi

dir=$(mktemp -d /tmp/egress-shot-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

# A port nothing listens on now (connect refused), on 127.0.0.1.
freeport() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
}
waitport() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}

# Certificates: a lab CA and one server certificate for every lab name.
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=egress lab CA" \
  -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=registry.lab.test" \
  -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:registry.lab.test,DNS:localhost,IP:127.0.0.1\n' >"$dir/san.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
  -days 30 -extfile "$dir/san.ext" -out "$dir/server.pem" 2>/dev/null

# Docker Hub's probe goes as deep as a pull: /v2/, the manifest, a bounded read of a blob.
blob="sha256:$(printf 'b%.0s' $(seq 64))"
head -c 262144 /dev/urandom >"$dir/blob"
registry=$(freeport); busy=$(freeport); portal=$(freeport); sni=$(freeport)
proxy=$(freeport); dns=$(freeport); socks=$(freeport); listen=$(freeport)

mkdir -p "$dir/nginx/tmp"
cat >"$dir/nginx/nginx.conf" <<EOF
$( [ "$(id -u)" -eq 0 ] && echo "user root;" )
worker_processes 1;
error_log $dir/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $dir/nginx/tmp/body; proxy_temp_path $dir/nginx/tmp/proxy;
  fastcgi_temp_path $dir/nginx/tmp/fastcgi; uwsgi_temp_path $dir/nginx/tmp/uwsgi; scgi_temp_path $dir/nginx/tmp/scgi;
  ssl_certificate $dir/server.pem; ssl_certificate_key $dir/server.key;
  server { listen 127.0.0.1:$registry ssl;
    location = /v2/ { add_header Docker-Distribution-API-Version registry/2.0 always; default_type application/json; return 200 '{}'; }
    location = /v2/library/alpine/manifests/latest { add_header Docker-Content-Digest sha256:$(printf 'a%.0s' $(seq 64)) always;
      default_type application/vnd.docker.distribution.manifest.v2+json; return 200 '{}'; }
    location = /v2/library/alpine/blobs/$blob { default_type application/octet-stream; alias $dir/blob; } }
  server { listen 127.0.0.1:$busy ssl;
    location / { default_type application/json; return 429 '{"errors":[{"code":"TOOMANYREQUESTS"}]}'; } }
  server { listen 127.0.0.1:$portal;
    location / { default_type text/html; return 200 '<html><body>Please log in to the guest Wi-Fi</body></html>'; } }
}
EOF
nginx -p "$dir/nginx/" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/error.log" -g "daemon off; pid $dir/nginx/nginx.pid;" &
pids+=($!)
# Reads the ClientHello, then closes: what SNI filtering looks like from the client.
socat "TCP-LISTEN:$sni,bind=127.0.0.1,reuseaddr,fork" SYSTEM:'head -c 64 >/dev/null' &
pids+=($!)
cat >"$dir/tinyproxy.conf" <<EOF
Port $proxy
Listen 127.0.0.1
Timeout 10
MaxClients 20
LogLevel Error
EOF
tinyproxy -d -c "$dir/tinyproxy.conf" >"$dir/tinyproxy.log" 2>&1 &
pids+=($!)
# Answers registry.lab.test; refuses every other name (Docker Hub's "localhost" here).
dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --port="$dns" --listen-address=127.0.0.1 \
  --bind-interfaces --pid-file="$dir/dnsmasq.pid" --host-record=registry.lab.test,127.0.0.1 \
  --local=/registry.lab.test/ >"$dir/dnsmasq.log" 2>&1 &
pids+=($!)
for p in "$registry" "$busy" "$portal" "$sni" "$proxy"; do waitport "$p"; done

cat >"$dir/config.json" <<EOF
{
  "listen": "127.0.0.1:$listen", "interval_seconds": 5, "timeout_seconds": 3,
  "resolvers": [{"name": "lab", "address": "127.0.0.1:$dns"}],
  "paths": [{"name": "direct"},
            {"name": "corp", "proxy": "http://alice:s3cret@127.0.0.1:$proxy"},
            {"name": "clash", "proxy": "socks5h://127.0.0.1:$socks"}],
  "targets": [
    {"name": "dockerhub", "kind": "dockerhub", "url": "https://localhost:$registry", "ca_file": "$dir/ca.pem", "resolver": "lab",
     "blob_digest": "$blob"},
    {"name": "mirror-lab", "kind": "mirror", "url": "https://registry.lab.test:$registry", "ca_file": "$dir/ca.pem", "resolver": "lab"},
    {"name": "mirror-busy", "kind": "mirror", "url": "https://127.0.0.1:$busy", "ca_file": "$dir/ca.pem"},
    {"name": "mirror-sni", "kind": "mirror", "url": "https://127.0.0.1:$sni", "ca_file": "$dir/ca.pem"},
    {"name": "guest-wifi", "kind": "registry", "url": "http://127.0.0.1:$portal", "paths": ["direct"]}
  ]
}
EOF

"$bin" --config "$dir/config.json" --log-level warn 2>"$dir/agent.log" &
agent=$!
pids+=($agent)
waitport "$listen"
# Two rounds, so "last success" has an age.
sleep 7

url="http://127.0.0.1:$listen/"
shoot() { # NAME WIDTH HEIGHT [#FRAGMENT]
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --user-data-dir="$dir/chromium" --screenshot="$prefix-$1.png" --window-size="$2,$3" "$url${4:-}" >/dev/null 2>&1
  echo "wrote $prefix-$1.png ($2×$3${4:+, scrolled to $4})"
}
shoot desktop 1280 2000
shoot phone 390 3800

echo
echo "\$ egress-monitor check --config config.json"
"$bin" check --config "$dir/config.json" --log-level warn || echo "(exit status $?)"
echo
echo "\$ egress-monitor suggest --config config.json"
"$bin" suggest --config "$dir/config.json" --log-level warn || echo "(exit status $?)"
