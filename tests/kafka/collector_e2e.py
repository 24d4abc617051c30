"""The collector writing a real Kafka-protocol broker (noida-db): `eddy standalone` with
collector.sink = "kafka" answers pixel requests once the broker acknowledged them, the clicks
supervisor it submits reads them back from Kafka into SQL, and confluent-kafka (not Eddy's code)
finds the records keyed by party id. Then the broker dies: the collector answers 503 and /ping
says why.

Usage: collector_e2e.py --eddy PATH --noida PATH
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from divolte_wire import base36, signed_query  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pixel(party, n):
    now = int(time.time() * 1000)
    return signed_query({
        "p": f"0:mf3k2a1b:{party}", "s": f"0:mf3k2a1b:s-{party}", "v": "0:pv", "e": f"0:pv{n:x}",
        "c": base36(now), "n": "t" if n == 0 else "f", "f": "t" if n == 0 else "f",
        "l": f"https://shop.example/item/{n}", "t": "pageView" if n == 0 else "click",
    })


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def sql(node, query):
    req = urllib.request.Request(f"{node}/druid/v2/sql", data=json.dumps({"query": query}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError:
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eddy", required=True)
    ap.add_argument("--noida", required=True)
    args = ap.parse_args()
    args.eddy, args.noida = os.path.abspath(args.eddy), os.path.abspath(args.noida)
    work = tempfile.mkdtemp(prefix="eddy-collector-kafka-")
    port = free_port()
    servers = f"127.0.0.1:{port}"
    with open(os.path.join(work, "broker.log"), "w") as log:
        broker = subprocess.Popen([args.noida, "start", "--only", "kafka", "--kafka-port", str(port), "--host",
                                   "127.0.0.1", "--data-dir", os.path.join(work, "broker")],
                                  cwd=work, stdout=log, stderr=log, start_new_session=True)
    eddy = None
    try:
        deadline = time.time() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.time() < deadline, "the broker did not start"
            time.sleep(0.1)
        # The collector creates missing topics itself; these are made here to have 3 partitions.
        admin = AdminClient({"bootstrap.servers": servers, "log_level": 0})
        for f in admin.create_topics([NewTopic("clicks", 3, 1), NewTopic("clicks_bad_rows", 1, 1)]).values():
            f.result(30)
        env = {**os.environ, "NO_COLOR": "1", "RUST_LOG": "info",
               "EDDY_COLLECTOR__SINK": "kafka",
               "EDDY_COLLECTOR__KAFKA": f'{{ "bootstrap.servers" = "{servers}" }}',
               "EDDY_COLLECTOR__SINK_TIMEOUT_MS": "3000"}
        eddy = subprocess.Popen([args.eddy, "standalone", "--http-addr", "127.0.0.1:0", "--flight-addr", "",
                                 "--collector-addr", "127.0.0.1:0", "--data-dir", os.path.join(work, "eddy")],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        node = collector = None
        for line in eddy.stdout:
            if "eddy standalone listening on" in line:
                node = line[line.find("http://"):].split()[0]
            if "collector listening on" in line:
                collector = line[line.find("http://"):].split()[0]
            if node and collector:
                break
        assert node and collector, "eddy did not report its addresses"
        threading.Thread(target=lambda: [None for _ in eddy.stdout], daemon=True).start()

        parties = {"ada": 4, "bo": 3, "cy": 5}
        for party, n in parties.items():
            for i in range(n):
                status, body = get(f"{collector}/csc-event?{pixel(party, i)}")
                assert status == 200 and body[:6] == b"GIF89a", (status, body)
        total = sum(parties.values())
        deadline = time.time() + 60
        while True:
            rows = sql(node, "SELECT partyId, COUNT(*) AS n FROM clicks GROUP BY 1 ORDER BY 1")
            got = {r["partyId"].rsplit(":", 1)[1]: r["n"] for r in rows or []}
            if got == parties:
                break
            assert time.time() < deadline, f"SQL has {got}, want {parties}"
            time.sleep(0.2)
        print(f"{total} collector events went through Kafka into SQL")

        consumer = Consumer({"bootstrap.servers": servers, "group.id": "e2e-check", "auto.offset.reset": "earliest",
                             "session.timeout.ms": 6000})
        consumer.subscribe(["clicks"])
        seen = []
        deadline = time.time() + 60
        while len(seen) < total and time.time() < deadline:
            m = consumer.poll(1.0)
            if m is not None and not m.error():
                seen.append((m.key().decode(), m.partition()))
        consumer.close()
        assert len(seen) == total, seen
        by_party = {}
        for key, partition in seen:
            assert key.startswith("0:mf3k2a1b:"), key
            by_party.setdefault(key, set()).add(partition)
        assert all(len(p) == 1 for p in by_party.values()), f"a party spans partitions: {by_party}"
        print("confluent-kafka reads the records keyed by party id, one partition per party")

        os.killpg(broker.pid, signal.SIGKILL)
        broker.wait(timeout=30)
        status, body = get(f"{collector}/csc-event?{pixel('dee', 0)}")
        assert status == 503, (status, body)
        status, body = get(f"{collector}/ping")
        assert status == 503 and body, (status, body)
        print(f"broker down: 503 and /ping says {body.decode().strip()[:100]!r}")
    finally:
        if eddy and eddy.poll() is None:
            eddy.send_signal(signal.SIGKILL)
            eddy.wait(timeout=30)
        if broker.poll() is None:
            os.killpg(broker.pid, signal.SIGKILL)
    print("collector kafka e2e: ok")


if __name__ == "__main__":
    main()
