#!/usr/bin/env python3
"""Helpers for Tests/Bench/run.sh: delaying peers, metric parsing, the final report.

Standard library only. Subcommands:

  delay-server PORT:DELAY_MS ...     plain HTTP registry `/v2/` answering DELAY_MS after the
                                     request head arrived (time to first byte)
  hold-relay PORT UPSTREAM HOLD_MS   TCP relay that holds the server's first flight (the TLS
                                     ServerHello) for HOLD_MS, then forwards everything at once
  metric-sum FILE NAME [LABEL=VALUE...]   sum of a family's samples in an exposition
  hist FILE0 FILE1 NAME Q...         quantiles of a histogram's increase between two scrapes
  check-phase FILE TARGET PHASE      a phase's seconds from `egress-monitor check --json`
  check-field FILE TARGET FIELD      a top-level field of a target's entry in `check --json`
  startup URL CMD...                 seconds from spawning CMD to the first 200 from URL
  drive-spread URLFILE SECONDS OUT   requests each URL of URLFILE (curl -K lines `url = "..."`)
                                     once a second for SECONDS, the N URLs at N even offsets
                                     within each second (how Prometheus spreads its scrapes);
                                     appends the bodies to OUT
  report DIR                         medians over runs, ratios, targets
"""
import json
import math
import os
import re
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request


# --------------------------------------------------------------------------- peers

def drive_spread(url_file, seconds, out):
    """Drives blackbox_exporter the way Prometheus scrapes N probe targets: each URL once a
    second, URL k at k/N of the second, over persistent connections (four workers, so a slow
    probe delays no other start). The bodies go to OUT, for counting probe_success lines."""
    import http.client
    import queue
    urls = [m.group(1) for m in re.finditer(r'url = "([^"]+)"', open(url_file).read())]
    jobs = queue.Queue()
    bodies = []
    lock = threading.Lock()

    def worker():
        conns = {}
        while True:
            url = jobs.get()
            if url is None:
                return
            parsed = urllib.request.urlparse(url)
            key = parsed.netloc
            for attempt in (0, 1):
                conn = conns.get(key) or http.client.HTTPConnection(key, timeout=30)
                conns[key] = conn
                try:
                    conn.request("GET", parsed.path + "?" + parsed.query)
                    body = conn.getresponse().read()
                    with lock:
                        bodies.append(body)
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conns.pop(key, None)

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for w in workers:
        w.start()
    start = time.perf_counter()
    for second in range(seconds):
        for k, url in enumerate(urls):
            precise_wait_until(start + second + k / len(urls))
            jobs.put(url)
    for _ in workers:
        jobs.put(None)
    for w in workers:
        w.join()
    with open(out, "ab") as f:
        for body in bodies:
            f.write(body)


def precise_wait_until(t):
    """Sleeps until perf_counter() >= t, within a few microseconds (sleep, then spin)."""
    while True:
        left = t - time.perf_counter()
        if left <= 0:
            return
        if left > 0.002:
            time.sleep(left - 0.0015)


def delay_server(specs):
    """Each spec `PORT:DELAY_MS`: answers every request like a registry's `/v2/` (200, `{}`,
    Docker-Distribution-API-Version) DELAY_MS after the request head's last byte arrived."""
    body = b"{}"
    response = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Docker-Distribution-API-Version: registry/2.0\r\n"
                b"Content-Length: 2\r\nConnection: close\r\n\r\n" + body)

    def serve(conn, delay):
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            precise_wait_until(time.perf_counter() + delay)
            try:
                conn.sendall(response)
                conn.shutdown(socket.SHUT_WR)
                conn.settimeout(2)
                while conn.recv(65536):
                    pass
            except OSError:
                pass

    def listen(port, delay):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(128)
        while True:
            conn, _ = s.accept()
            threading.Thread(target=serve, args=(conn, delay), daemon=True).start()

    threads = []
    for spec in specs:
        port, delay_ms = spec.split(":")
        t = threading.Thread(target=listen, args=(int(port), float(delay_ms) / 1000), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()


def hold_relay(port, upstream, hold_ms):
    """Relays 127.0.0.1:PORT to 127.0.0.1:UPSTREAM. Client bytes pass at once; the server's
    first bytes (its whole first flight: ServerHello ... Finished in TLS 1.3) are held HOLD_MS
    from their arrival, then sent with whatever else arrived meanwhile; later bytes pass at once."""
    hold = float(hold_ms) / 1000

    def relay(client):
        try:
            server = socket.create_connection(("127.0.0.1", upstream))
        except OSError:
            client.close()
            return
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        release_at = None  # set when the server's first bytes arrive
        held = b""
        released = hold <= 0
        open_ends = {client: server, server: client}
        try:
            while open_ends:
                timeout = None
                if not released and release_at is not None:
                    timeout = max(0.0, release_at - time.perf_counter())
                    if timeout < 0.002:
                        precise_wait_until(release_at)
                        client.sendall(held)
                        held, released = b"", True
                        continue
                    timeout -= 0.0015
                readable, _, _ = select.select(list(open_ends), [], [], timeout)
                for s in readable:
                    data = s.recv(65536)
                    peer = open_ends[s]
                    if not data:
                        if s is server and held:
                            precise_wait_until(release_at)
                            client.sendall(held)
                            held, released = b"", True
                        try:
                            peer.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                        del open_ends[s]
                        continue
                    if s is server and not released:
                        if release_at is None:
                            release_at = time.perf_counter() + hold
                        held += data
                    else:
                        peer.sendall(data)
        except OSError:
            pass
        finally:
            client.close()
            server.close()

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(128)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=relay, args=(conn,), daemon=True).start()


# --------------------------------------------------------------------------- expositions

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("#"):
                continue
            m = SAMPLE.match(line.strip())
            if not m:
                continue
            labels = dict(LABEL.findall(m.group(3) or ""))
            yield m.group(1), labels, float(m.group(4))


def metric_sum(path, name, filters):
    want = dict(f.split("=", 1) for f in filters)
    total = 0.0
    for n, labels, v in samples(path):
        if n == name and all(labels.get(k) == v2 for k, v2 in want.items()):
            total += v
    return total


def histogram(path, name):
    """Sum over series: {le: cumulative count}, count."""
    buckets = {}
    for n, labels, v in samples(path):
        if n == name + "_bucket":
            le = float(labels["le"])
            buckets[le] = buckets.get(le, 0) + v
    return buckets


def hist_quantiles(path0, path1, name, qs):
    b0 = histogram(path0, name) if path0 != "-" else {}
    b1 = histogram(path1, name)
    delta = sorted((le, c - b0.get(le, 0)) for le, c in b1.items())
    total = delta[-1][1] if delta else 0
    out = []
    for q in qs:
        if total <= 0:
            out.append("nan")
            continue
        rank = q * total
        prev_le, prev_c = 0.0, 0.0
        for le, c in delta:
            if c >= rank:
                if math.isinf(le):
                    out.append(repr(prev_le))  # as Prometheus: the highest finite bound
                else:
                    frac = 0 if c == prev_c else (rank - prev_c) / (c - prev_c)
                    out.append(repr(prev_le + (le - prev_le) * frac))
                break
            prev_le, prev_c = le, c
    return out, int(total)


# --------------------------------------------------------------------------- check --json

def check_entry(path, target):
    with open(path) as f:
        doc = json.load(f)
    for r in doc["results"]:
        if r["target"] == target:
            return r
    raise SystemExit(f"no result for {target} in {path}")


# --------------------------------------------------------------------------- callgrind

def callgrind_self(path):
    """Self cost (Ir) per object file and per function, from a callgrind output file."""
    names = {"ob": {}, "fn": {}}
    ob = fn = "?"
    after_calls = False
    by_object, by_function = {}, {}
    with open(path, errors="replace") as f:
        for line in f:
            if line[:3] in ("ob=", "fn="):
                key, rest = line[:2], line[3:].strip()
                m = re.match(r"\((\d+)\)(?: (.*))?", rest)
                if m:
                    if m.group(2) is not None:
                        names[key][m.group(1)] = m.group(2)
                    rest = names[key].get(m.group(1), rest)
                if key == "ob":
                    ob = rest
                else:
                    fn = rest
                continue
            if line.startswith("calls="):
                after_calls = True
                continue
            if line[:1].isdigit() or line[:1] in "+-*":
                parts = line.split()
                if len(parts) >= 2:
                    cost = int(parts[1])
                    if not after_calls:
                        o = ob.rsplit("/", 1)[-1]
                        by_object[o] = by_object.get(o, 0) + cost
                        by_function[(o, fn)] = by_function.get((o, fn), 0) + cost
                after_calls = False
                continue
            if line.startswith(("cob=", "cfn=")):
                m = re.match(r"\((\d+)\) (.*)", line[4:].strip())
                if m:  # compressed names are also defined on call lines
                    names["ob" if line[1] == "o" else "fn"][m.group(1)] = m.group(2)
                continue
            if line.startswith(("cfi=", "cfl=")):
                continue
            after_calls = False
    return by_object, by_function


def callgrind_report(path, per, count, top):
    by_object, by_function = callgrind_self(path)
    total = sum(by_object.values())
    print(f"  {total / per:,.0f} instructions per {count} (self cost by object):")
    for o, v in sorted(by_object.items(), key=lambda kv: -kv[1])[:8]:
        print(f"    {v / per:>12,.0f}  {100 * v / total:5.1f}%  {o}")
    print(f"  heaviest functions (self):")
    for (o, fn), v in sorted(by_function.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {v / per:>12,.0f}  {100 * v / total:5.1f}%  {fn[:110]}  [{o}]")


# --------------------------------------------------------------------------- startup

def startup(url, cmd):
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        r.read()
                        return time.perf_counter() - t0
            except OSError:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"{cmd[0]} exited with {proc.returncode} before answering")
            if time.perf_counter() - t0 > 10:
                raise SystemExit(f"{cmd[0]} did not answer {url} within 10 s")
            time.sleep(0.0005)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise SystemExit(f"{cmd[0]} did not stop within 10 s of SIGTERM")


# --------------------------------------------------------------------------- report

# The agent spreads its pairs' rounds over the interval; blackbox_exporter is measured both ways:
# probes spread over each second as Prometheus spreads its scrapes of 60 probe targets (every
# handshake on cold caches, like the agent's), and in bursts of 60 (curl --parallel), where the
# handshakes run back to back on warm caches and cost about half as much.
SPREAD = "blackbox_exporter, spread over each second"
BURST = "blackbox_exporter, bursts of 60"

# figure key -> (section, label, unit, scale for display, peers, target)
# A peer is (key, label); the ratio printed is figure / peer. A target is (op, value, text);
# a "<=ratio" target may name the one peer (by label) it is judged against, else every peer.
FIGURES = [
    ("1. Cost per probe: 60 HTTPS registry targets on loopback, each every second, 30 s", [
        ("agent_cpu_ms_per_probe", "agent CPU per probe", "ms", [("bb_spread_cpu_ms_per_probe", SPREAD), ("bb_cpu_ms_per_probe", BURST)], ("<=ratio", 0.5)),
        ("agent_sys_ms_per_probe", "  of which in the kernel (stime)", "ms", [("bb_spread_sys_ms_per_probe", SPREAD), ("bb_sys_ms_per_probe", BURST)], None),
        # Each side's peak in the same mode: a fresh blackbox for each way of driving it.
        ("agent_hwm_mib", "agent peak RSS (VmHWM)", "MiB", [("bb_spread_hwm_mib", SPREAD), ("bb_hwm_mib", BURST)], ("<=ratio", 0.5, SPREAD)),
        ("agent_rss_anon_mib", "  of which anonymous (heap, stacks) at the end", "MiB", [], None),
        ("agent_rss_file_mib", "  of which file-backed (binary, Swift runtime, OpenSSL)", "MiB", [], None),
        ("agent_probes_per_s", "agent probes per second", "/s", [("bb_spread_probes_per_s", SPREAD), ("bb_probes_per_s", BURST)], None),
        ("agent_probe_ok_ratio", "agent probes that succeeded", "", [("bb_spread_probe_ok_ratio", SPREAD), ("bb_probe_ok_ratio", BURST)], None),
    ]),
    ("2. Timing fidelity (injected delay; measured - injected in brackets; the delaying peers add their own\n"
     "   turnaround, so the target applies to delayed - baseline, both measured in the same run)", [
        ("fid_http_agent_ms", "TTFB 150 ms: agent http phase", "ms", [("fid_http_curl_ms", "curl starttransfer-pretransfer"), ("fid_http_bb_ms", "blackbox processing")], ("abs-info", 150)),
        ("fid_http_base_agent_ms", "TTFB 0 ms (baseline): agent http phase", "ms", [("fid_http_base_curl_ms", "curl"), ("fid_http_base_bb_ms", "blackbox")], None),
        ("fid_http_delta_agent_ms", "  delayed - baseline: agent", "ms", [("fid_http_delta_curl_ms", "curl"), ("fid_http_delta_bb_ms", "blackbox")], ("abs", 150, 0.5)),
        ("fid_tls_agent_ms", "ServerHello held 100 ms: agent tls phase", "ms", [("fid_tls_curl_ms", "curl appconnect-connect"), ("fid_tls_bb_ms", "blackbox tls")], ("abs-info", 100)),
        ("fid_tls_base_agent_ms", "ServerHello held 0 ms (baseline): agent tls phase", "ms", [("fid_tls_base_curl_ms", "curl"), ("fid_tls_base_bb_ms", "blackbox")], None),
        ("fid_tls_delta_agent_ms", "  delayed - baseline: agent", "ms", [("fid_tls_delta_curl_ms", "curl"), ("fid_tls_delta_bb_ms", "blackbox")], ("abs", 100, 0.5)),
        ("fid_blob_agent_kBps", "tbf 8 Mbit/s (1000 kB/s on the wire): agent blob throughput", "kB/s", [("fid_blob_curl_kBps", "curl speed_download"), ("fid_blob_bb_kBps", "blackbox length/transfer")], None),
    ]),
    ("3. Scale: 2,000 target x path pairs (500 HTTPS targets x 4 paths) at 30 s, 30 % blackholed", [
        ("scale_lag_p99_ms", "scheduler lag p99", "ms", [("scale_lag_p50_ms", "p50")], ("<=", 100)),
        ("scale_threads", "threads", "", [], ("<=", 16)),
        ("scale_cpu_pct", "CPU, % of one core", "%", [("scale_bb_equiv_cpu_pct", "blackbox at this rate (from 1., spread)"), ("scale_bb_burst_equiv_cpu_pct", "blackbox at this rate (from 1., bursts)")], ("<=", 10)),
        ("scale_sys_pct", "  of which in the kernel (stime)", "%", [], None),
        ("scale_rss_mib", "RSS (VmRSS, with scrapes every 15 s)", "MiB", [], ("<=", 40)),
        ("scale_hwm_mib", "peak RSS (VmHWM)", "MiB", [], None),
        ("scale_rss_anon_mib", "  of which anonymous at the end", "MiB", [], None),
        ("scale_rss_file_mib", "  of which file-backed", "MiB", [], None),
        ("scale_probes_per_s", "probes per second", "/s", [], None),
        ("scale_ok_pairs", "pairs succeeding (expect 1400)", "", [], None),
    ]),
    ("4. /metrics", [
        ("render2000_ms", "scrape of the 2,000-pair agent (curl time_total)", "ms", [("render2000_static_ms", "nginx, same bytes from a file")], ("<=", 50)),
        ("render2000_mb", "  exposition size", "MB", [], None),
        ("scrape2000_gzip_mb", "  as gzip (Accept-Encoding: gzip)", "MB", [("render2000_mb", "text")], ("<=ratio", 0.125)),
        ("scrape2000_protobuf_mb", "  as protobuf with native histograms", "MB", [("render2000_mb", "text")], None),
        ("scrape2000_gzip_cpu_us", "agent CPU per gzip scrape (schedstat ns, median of 5 wrk runs)", "us", [("scrape2000_nginx_gzip_cpu_us", "nginx gzip-serving the same text")], None),
        ("central_native_series", "central Prometheus head series, native-only (protobuf)", "", [("central_classic_series", "classic (OpenMetrics)")], ("<=ratio", 0.125)),
        ("central_native_rss_mib", "  its RSS after 30 s", "MiB", [("central_classic_rss_mib", "classic")], None),
        ("wrk100_rps", "100-pair agent under wrk: scrapes/s", "/s", [("wrk100_static_rps", "nginx, same bytes from a file")], (">=", 2000)),
        ("wrk100_p99_ms", "  p99 latency", "ms", [("wrk100_static_p99_ms", "nginx")], ("<=", 10)),
        ("wrk100_kb", "  exposition size", "kB", [], None),
        ("wrk100_gzip_rps", "100-pair agent under wrk with gzip: scrapes/s", "/s", [("wrk100_static_gzip_rps", "nginx gzip, same bytes from a file")], None),
        ("wrk100_gzip_p99_ms", "  p99 latency", "ms", [("wrk100_static_gzip_p99_ms", "nginx gzip")], None),
    ]),
    ("5. Start and size", [
        ("startup_ms", "start to first /metrics answer", "ms", [("bb_startup_ms", "blackbox_exporter")], None),
        ("binary_mib", "release binary size", "MiB", [("bb_binary_mib", "blackbox_exporter")], None),
        ("binary_stripped_mib", "  stripped", "MiB", [], None),
    ]),
    ("6. DNS: cost's 60 registry targets, each under its own name, with a plain, a DoT and a DoH resolver\n"
     "   (dnsdist in front of a dnsmasq), alternated in 10 s slices, 30 s each; ratio = encrypted / plain", [
        ("dns_plain_cpu_ms_per_probe", "agent CPU per probe, plain resolver (UDP)", "ms", [], None),
        ("dns_dot_cpu_ms_per_probe", "agent CPU per probe, DoT resolver", "ms", [("dns_plain_cpu_ms_per_probe", "plain")], None),
        ("dns_doh_cpu_ms_per_probe", "agent CPU per probe, DoH resolver (HTTP/1.1)", "ms", [("dns_plain_cpu_ms_per_probe", "plain")], None),
        ("dns_plain_resolver_cpu_ms_per_probe", "resolver CPU per probe (dnsdist + dnsmasq), plain", "ms", [], None),
        ("dns_dot_resolver_cpu_ms_per_probe", "  DoT", "ms", [("dns_plain_resolver_cpu_ms_per_probe", "plain")], None),
        ("dns_doh_resolver_cpu_ms_per_probe", "  DoH", "ms", [("dns_plain_resolver_cpu_ms_per_probe", "plain")], None),
        ("dns_plain_queries_per_probe", "queries at the resolver per probe (2: A and AAAA every round, no cache), plain", "", [], None),
        ("dns_dot_queries_per_probe", "  DoT", "", [], None),
        ("dns_doh_queries_per_probe", "  DoH", "", [], None),
        ("dns_dot_conns_per_probe", "TLS connections to the resolver per probe (1: one per lookup), DoT", "", [], None),
        ("dns_doh_conns_per_probe", "  DoH", "", [], None),
        ("dns_dot_resumed_per_probe", "  of which TLS resumptions, DoT", "", [], None),
        ("dns_doh_resumed_per_probe", "  of which TLS resumptions, DoH", "", [], None),
        ("dns_plain_probes_per_s", "probes per second, plain", "/s", [], None),
        ("dns_dot_probes_per_s", "  DoT", "/s", [], None),
        ("dns_doh_probes_per_s", "  DoH", "/s", [], None),
        ("dns_plain_probe_ok_ratio", "probes that succeeded, plain", "", [], None),
        ("dns_dot_probe_ok_ratio", "  DoT", "", [], None),
        ("dns_doh_probe_ok_ratio", "  DoH", "", [], None),
    ]),
]


# Success ratios that gate verdicts: a figure's verdict is MISSED when a run's probes failed
# (an agent whose probes failed early would look cheap, and so would a peer). figure key ->
# [(success key, minimum, peer)]: the agent's own (peer None) and, for a ratio against a peer
# whose key starts with `peer`, that peer's.
OK = 0.99
COST_GATES = [("agent_probe_ok_ratio", OK, None), ("bb_spread_probe_ok_ratio", OK, "bb_spread_"),
              ("bb_probe_ok_ratio", OK, "bb_cpu_"), ("bb_probe_ok_ratio", OK, "bb_hwm_")]
# 1,400 of the 2,000 pairs can succeed (30 % of the targets are blackholed).
SCALE_GATES = [("scale_ok_pairs", 1400 * OK, None)]
GATES = {"agent_cpu_ms_per_probe": COST_GATES, "agent_hwm_mib": COST_GATES,
         "scale_lag_p99_ms": SCALE_GATES, "scale_threads": SCALE_GATES, "scale_cpu_pct": SCALE_GATES,
         "scale_rss_mib": SCALE_GATES}


def finite(v):
    return v is not None and not (isinstance(v, float) and (math.isnan(v) or math.isinf(v)))


def fmt(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def report(directory):
    runs = []
    for name in sorted(os.listdir(directory)):
        if re.fullmatch(r"run\d+\.tsv", name):
            values = {}
            with open(os.path.join(directory, name)) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 2:
                        try:
                            values[parts[0]] = float(parts[1])
                        except ValueError:
                            pass
            runs.append(values)
    if not runs:
        raise SystemExit("no runs recorded")

    def med(key):
        vs = [r[key] for r in runs if finite(r.get(key))]
        return statistics.median(vs) if vs else None

    def each(key):
        return " ".join(fmt(r.get(key)) for r in runs)

    def gate(key, peer=None):
        """The success ratios below their minimum, in any run, as text; None when all pass.
        A run without the figure does not pass: a section that did not run cannot be judged."""
        failing = []
        for okey, minimum, for_peer in GATES.get(key, []):
            if for_peer is not None and (peer is None or not peer.startswith(for_peer)):
                continue
            values = [r.get(okey) for r in runs]
            bad = [v for v in values if not finite(v) or v < minimum]
            if bad:
                failing.append(f"{okey} {' '.join(fmt(v) for v in values)} < {fmt(minimum)}")
        return "; ".join(failing) or None

    print(f"\nMedians over {len(runs)} run(s); each run's values in [ ]. Ratio = figure / peer, same run.\n")
    verdicts = []

    def judge(ok, text, key, peer=None):
        """A verdict, MISSED when the success ratios behind it fell short."""
        failing = gate(key, peer)
        if failing:
            verdicts.append((False, f"{text} -- not judged, probes failed: {failing}"))
        else:
            verdicts.append((ok, text))

    for section, rows in FIGURES:
        print(section)
        for key, label, unit, peers, target in rows:
            m = med(key)
            line = f"  {label}: {fmt(m)} {unit}".rstrip() + f"  [{each(key)}]"
            if target and target[0] in ("abs", "abs-info") and m is not None:
                line += f"  ({m - target[1]:+.2f})"
            print(line)
            for pkey, plabel in peers:
                pm = med(pkey)
                # Only runs where both figures exist and are finite; a missing one is no ratio.
                ratios = [r[key] / r[pkey] for r in runs if finite(r.get(key)) and finite(r.get(pkey)) and r[pkey]]
                ratio = statistics.median(ratios) if ratios else None
                extra = ""
                if target and target[0] in ("abs", "abs-info") and pm is not None:
                    extra = f"  ({pm - target[1]:+.2f})"
                print(f"      vs {plabel}: {fmt(pm)} {unit}{extra}  [{each(pkey)}]  ratio {fmt(ratio)}")
                if target and target[0] == "<=ratio" and (len(target) < 3 or target[2] == plabel):
                    ok = ratio is not None and ratio <= target[1]
                    judge(ok, f"{label} <= {target[1]} x {plabel}: ratio {fmt(ratio)}", key, pkey)
            if target and target[0] not in ("<=ratio", "abs-info") and m is None:
                # A figure that is missing or NaN in every run is a target not shown to be met.
                verdicts.append((False, f"{label}: no figure (missing or NaN in every run)"))
            elif target and m is not None:
                op = target[0]
                if op == "abs-info":
                    pass
                elif op == "abs":
                    ok = abs(m - target[1]) <= target[2]
                    judge(ok, f"{label} within {target[2]} ms of {target[1]}: {m - target[1]:+.2f} ms", key)
                elif op == "<=":
                    judge(m <= target[1], f"{label} <= {target[1]} {unit}: {fmt(m)}", key)
                elif op == ">=":
                    judge(m >= target[1], f"{label} >= {target[1]} {unit}: {fmt(m)}", key)
        print()
    print("Targets (issue 8), on the medians:")
    for ok, text in verdicts:
        print(f"  [{'met' if ok else 'MISSED'}] {text}")
    return verdicts


def selftest():
    """The verdicts on made-up runs: a missing or NaN figure is MISSED, failed probes make a
    cheap figure MISSED, the RSS ratio is judged against the spread peer. Prints PASS or exits 1."""
    import contextlib
    import io
    import tempfile

    good = {"agent_cpu_ms_per_probe": 1, "bb_spread_cpu_ms_per_probe": 4, "bb_cpu_ms_per_probe": 3,
            "agent_hwm_mib": 16, "bb_spread_hwm_mib": 40, "bb_hwm_mib": 20,
            "agent_probe_ok_ratio": 1, "bb_spread_probe_ok_ratio": 1, "bb_probe_ok_ratio": 1,
            "scale_lag_p99_ms": 20, "scale_threads": 8, "scale_cpu_pct": 7, "scale_rss_mib": 30, "scale_ok_pairs": 1400,
            "render2000_ms": 20, "wrk100_rps": 5000, "wrk100_p99_ms": 2,
            "fid_http_delta_agent_ms": 150.1, "fid_tls_delta_agent_ms": 100.2,
            "render2000_mb": 14, "scrape2000_gzip_mb": 0.8, "central_classic_series": 160000, "central_native_series": 19000}

    def verdicts(change):
        with tempfile.TemporaryDirectory() as d:
            for i in range(3):
                values = dict(good)
                values.update(change)
                with open(os.path.join(d, f"run{i + 1}.tsv"), "w") as f:
                    for k, v in values.items():
                        if v is not None:
                            f.write(f"{k} {v}\n")
            with contextlib.redirect_stdout(io.StringIO()):
                return report(d)

    def missed(vs, prefix):
        return [t for ok, t in vs if not ok and t.startswith(prefix)]

    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)

    base = verdicts({})
    check(all(ok for ok, _ in base), f"every target met on good runs: {[t for ok, t in base if not ok]}")
    check(len(base) == 14, f"14 verdicts on good runs, got {len(base)}")
    # RSS: 16 / 40 (spread) = 0.4 is met; against the burst peer (16 / 20) it would not be.
    check(any(t.startswith("agent peak RSS (VmHWM) <= 0.5 x " + SPREAD) for ok, t in base), "RSS judged against the spread peer")
    check(not any(BURST in t and "RSS" in t for ok, t in base), "RSS not judged against the burst peer")
    for key in ("scale_cpu_pct", "render2000_ms", "fid_tls_delta_agent_ms"):
        for value in (None, float("nan")):
            vs = verdicts({key: value})
            check(len(vs) == len(base) and any(not ok and "no figure" in t for ok, t in vs),
                  f"{key}={value}: MISSED as no figure, got {[t for ok, t in vs if not ok]}")
    for key in ("bb_spread_hwm_mib", "agent_cpu_ms_per_probe"):
        vs = verdicts({key: None})
        check(any(not ok and "ratio n/a" in t for ok, t in vs), f"{key} missing: its ratio MISSED")
    vs = verdicts({"agent_probe_ok_ratio": 0.2})
    check(len(missed(vs, "agent CPU per probe")) == 2 and len(missed(vs, "agent peak RSS")) == 1,
          f"failed agent probes: CPU and RSS verdicts MISSED, got {[t for ok, t in vs if not ok]}")
    vs = verdicts({"bb_probe_ok_ratio": 0.5})
    check(missed(vs, "agent CPU per probe <= 0.5 x " + BURST) and not missed(vs, "agent CPU per probe <= 0.5 x " + SPREAD),
          f"failed burst peer probes: only the burst ratio MISSED, got {[t for ok, t in vs if not ok]}")
    vs = verdicts({"scale_ok_pairs": 700})
    check(len(missed(vs, "scheduler lag")) == 1 and len(missed(vs, "CPU, % of one core")) == 1,
          f"half the scale pairs failing: scale verdicts MISSED, got {[t for ok, t in vs if not ok]}")
    if failures:
        print("benchlib selftest: FAILED\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("benchlib selftest: PASS")


# --------------------------------------------------------------------------- main

def main(argv):
    if not argv:
        print(__doc__)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd == "delay-server":
        delay_server(args)
    elif cmd == "hold-relay":
        hold_relay(int(args[0]), int(args[1]), args[2])
    elif cmd == "metric-sum":
        print(repr(metric_sum(args[0], args[1], args[2:])))
    elif cmd == "hist":
        qs, total = hist_quantiles(args[0], args[1], args[2], [float(q) for q in args[3:]])
        print(" ".join(qs), total)
    elif cmd == "check-phase":
        v = check_entry(args[0], args[1])["phases"].get(args[2])
        print("nan" if v is None else repr(v))
    elif cmd == "check-field":
        v = check_entry(args[0], args[1]).get(args[2])
        print("nan" if v is None else v)
    elif cmd == "callgrind":
        callgrind_report(args[0], float(args[1]), args[2], int(args[3]) if len(args) > 3 else 25)
    elif cmd == "startup":
        print(repr(startup(args[0], args[1:])))
    elif cmd == "drive-spread":
        drive_spread(args[0], int(args[1]), args[2])
    elif cmd == "report":
        report(args[0])
    elif cmd == "selftest":
        selftest()
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
