"""The collector under wrk (Debian's wrk, on loopback): pixel requests with realistic, signed
query strings (varied parties, pages, referrers, UTM parameters, custom parameters and user
agents), with the eddy process pinned to one core and wrk to the other.

- embedded sink: `eddy standalone` (the realtime supervisor reads the clicks topic on the same
  core meanwhile, as in production on one machine);
- Kafka sink: `eddy collector` writing a noida-db broker (the broker runs on wrk's core);
- overload: many more connections than the collector can serve, with a small queue: how many
  get 503, and the process's peak memory.

Every run checks that the stream holds at least as many records as wrk got 200s.
Results go to stdout and into docs/benchmarks.md.

Usage: collector.py --eddy PATH [--noida PATH] [--seconds S] [--connections C]
"""

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import native_vs_duckdb as nat

sys.path.insert(0, os.path.join(nat.REPO, "tests", "support"))
from divolte_wire import base36 as b36, signed_query  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
]


def requests(n, seed=5):
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        party = rng.randrange(5000)
        params = {
            "p": f"0:{b36(now - party * 1000)}:party{party:05d}AbCdEfGhIjKlMnOpQrStUv",
            "s": f"0:{b36(now)}:sess{party:05d}{rng.randrange(3)}AbCdEfGhIjKlMnOpQr",
            "v": f"0:pv{i:08d}AbCdEfGhIjKlMnOpQrStUvW",
            "c": b36(now + i),
            "n": "t" if rng.random() < 0.2 else "f",
            "f": "t" if rng.random() < 0.3 else "f",
            "l": f"https://shop.example/{rng.choice(['p', 'c', 'search', 'cart'])}/{rng.randrange(2000)}"
                 + (f"?utm_source={rng.choice(['news', 'ads', 'social'])}&utm_medium=cpc" if rng.random() < 0.3 else ""),
            "i": b36(rng.choice([1920, 1440, 390, 414, 1366])), "j": b36(rng.choice([1080, 900, 844, 896, 768])),
            "k": rng.choice(["1", "2", "1.i", "3"]), "w": b36(rng.choice([1200, 1400, 390])), "h": b36(rng.choice([700, 800, 660])),
            "t": rng.choice(["pageView"] * 6 + ["click", "addToCart", "scroll", "signup"]),
        }
        params["e"] = params["v"] + "0"
        if rng.random() < 0.6:
            params["r"] = rng.choice(["https://www.google.com/", "https://t.co/x", "https://shop.example/", "https://blog.example.org/post"])
        if params["t"] != "pageView":
            params["u"] = f"(sitem!sku-{rng.randrange(500)}!jprice!{rng.randrange(100, 9000) / 100}!)"
        out.append((f"/csc-event?{signed_query(params)}", rng.choice(AGENTS)))
    return out


def lua_script(path, reqs):
    lines = ["local paths = {"]
    lines += [f"  {{{json.dumps(p)}, {json.dumps(ua)}}}," for p, ua in reqs]
    lines += ["}", "local i = 0",
              "request = function()",
              "  i = i % #paths + 1",
              "  return wrk.format('GET', paths[i][1], {['User-Agent'] = paths[i][2]})",
              "end"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, env, markers):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "NO_COLOR": "1", "RUST_LOG": "warn,eddy=info,eddy_collector=info", **env})
    found = {}
    for line in proc.stdout:
        for name, marker in markers.items():
            if marker in line:
                found[name] = line[line.find("http://"):].split()[0]
        if len(found) == len(markers):
            break
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, found


def peak_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def wrk(url, script, seconds, connections):
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "-s", script, url], capture_output=True, text=True, check=True).stdout
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
           "requests": int(re.search(r"(\d+) requests in", out).group(1)),
           "non2xx": int((re.search(r"Non-2xx or 3xx responses: (\d+)", out) or [0, 0])[1])}

    def ms(v):
        num, unit = re.match(r"([\d.]+)(\w+)", v).groups()
        return float(num) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]

    for q in ("50", "90", "99"):
        res[f"p{q}_ms"] = ms(re.search(rf"\s{q}(?:\.000)?%\s+([\d.]+\w+)", out).group(1))
    return res


def stream_records(node, topic):
    with urllib.request.urlopen(f"{node}/eddy/v1/streams/{topic}", timeout=30) as r:
        t = json.loads(r.read())
    return sum(t["offsets"].values())


def embedded_run(args, work, script, connections, seconds, queue=None, ingest=True):
    data = tempfile.mkdtemp(dir=work)
    env = {"EDDY_QUERY__THREADS": "1"}
    if queue:
        env["EDDY_COLLECTOR__QUEUE_CAPACITY"] = str(queue)
    proc, urls = start(["taskset", "-c", "0", args.eddy, "standalone", "--http-addr", "127.0.0.1:0", "--flight-addr", "",
                        "--collector-addr", "127.0.0.1:0", "--data-dir", data], env,
                       {"node": "eddy standalone listening on", "collector": "collector listening on"})
    try:
        time.sleep(1)
        if not ingest:
            req = urllib.request.Request(f"{urls['node']}/druid/indexer/v1/supervisor/clicks/suspend", data=b"", method="POST")
            urllib.request.urlopen(req, timeout=30).read()
        wrk(urls["collector"], script, 2, connections)  # warm-up: caches, first supervisor run
        before = stream_records(urls["node"], "clicks")
        res = wrk(urls["collector"], script, seconds, connections)
        after = stream_records(urls["node"], "clicks")
        res["stored"] = after - before
        res["peak_rss_mb"] = round(peak_rss(proc.pid) / 2**20)
        assert res["stored"] >= res["requests"] - res["non2xx"], res
        return res
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def kafka_run(args, work, script, connections, seconds):
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    port = free_port()
    servers = f"127.0.0.1:{port}"
    broker = subprocess.Popen(["taskset", "-c", "1", args.noida, "start", "--only", "kafka", "--kafka-port", str(port),
                               "--host", "127.0.0.1", "--data-dir", tempfile.mkdtemp(dir=work)],
                              cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    proc = None
    try:
        deadline = time.time() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.time() < deadline
            time.sleep(0.1)
        admin = AdminClient({"bootstrap.servers": servers, "log_level": 0})
        for f in admin.create_topics([NewTopic("clicks", 3, 1), NewTopic("clicks_bad_rows", 1, 1)]).values():
            f.result(30)
        config = os.path.join(work, "collector.toml")
        with open(config, "w") as f:
            f.write(f'[collector]\naddr = "127.0.0.1:0"\nsink = "kafka"\nkafka = {{ "bootstrap.servers" = "{servers}" }}\n')
        proc, urls = start(["taskset", "-c", "0", args.eddy, "collector", "--config", config], {},
                           {"collector": "collector listening on"})
        wrk(urls["collector"], script, 2, connections)
        res = wrk(urls["collector"], script, seconds, connections)
        res["peak_rss_mb"] = round(peak_rss(proc.pid) / 2**20)
        c = Consumer({"bootstrap.servers": servers, "group.id": "bench", "log_level": 0})
        res["stored"] = sum(c.get_watermark_offsets(TopicPartition("clicks", p), timeout=30)[1] for p in range(3))
        c.close()
        assert res["stored"] >= res["requests"] - res["non2xx"], res
        return res
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        os.killpg(broker.pid, signal.SIGKILL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eddy", required=True)
    ap.add_argument("--noida")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--doc", default=os.path.join(nat.REPO, "docs", "benchmarks.md"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="eddy-collector-bench-")
    script = os.path.join(work, "pixel.lua")
    lua_script(script, requests(20000))
    rows = []
    runs = [
        ("embedded stream, the clicks supervisor indexing on the same core", args.connections,
         lambda c: embedded_run(args, work, script, c, args.seconds)),
        ("embedded stream, collector only (supervisor suspended)", args.connections,
         lambda c: embedded_run(args, work, script, c, args.seconds, ingest=False)),
        ("embedded stream, collector only (supervisor suspended)", 256,
         lambda c: embedded_run(args, work, script, c, args.seconds, ingest=False)),
    ]
    if args.noida:
        runs += [("Kafka, noida-db (`eddy collector`)", c, lambda c: kafka_run(args, work, script, c, args.seconds))
                 for c in (args.connections, 256)]
    runs.append(("embedded, overload: queue_capacity 256", 2000,
                 lambda c: embedded_run(args, work, script, c, 10, queue=256)))
    for name, conns, run in runs:
        r = run(conns)
        print(name, conns, json.dumps(r), flush=True)
        rows.append((name, conns, r))
    table = [f"Measured {time.strftime('%Y-%m-%d')} on this machine (2 cores): the eddy process pinned to core 0 "
             f"(`taskset -c 0`), wrk (1 thread) and the broker on core 1, {args.seconds} s per run after a 2 s warm-up, "
             "GET /csc-event with 20,000 distinct signed events rotating through 6 user agents.", "",
             "| sink | connections | requests/s (one core) | p50 ms | p90 ms | p99 ms | answered 503 | records stored | peak RSS MB |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, conns, r in rows:
        table.append(f"| {name} | {conns} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['p99_ms']:.2f} "
                     f"| {r['non2xx']:,} | {r['stored']:,} | {r['peak_rss_mb']} |")
    text = "\n".join(table)
    print(text)
    nat.update_doc(args.doc, "collector", text)


if __name__ == "__main__":
    main()
