"""End-to-end test of Kafka ingestion against a real Kafka-protocol broker process.

Three independent implementations: noida-db (the broker, a single binary that speaks Kafka, from
PyPI), confluent-kafka (the producer, librdkafka through Python) and Eddy's consumer. (tansu,
the other broker available here, reports a high watermark of 1 for every partition of a topic
with several partitions, so lag and offset checks cannot work against it.) The test creates a
topic with several partitions, POSTs a supervisor spec over HTTP (two task groups of two
replicas each), produces events, and checks them in SQL; then, while events keep being produced, kills Eddy with
SIGKILL at random moments and aborts it inside hand-offs (after upload, after publish) and checks
that COUNT(*) and SUM(uid) end equal to what the producer got acknowledged. Last, it stops the
broker and checks the supervisor reports it while queries keep working.

Usage: e2e.py --eddy PATH --noida PATH
"""

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

TOPIC = "clicks"
PARTITIONS = 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, limit=30):
    deadline = time.time() + limit
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


class Eddy:
    """`eddy standalone` as a child process; its URL comes from the log."""

    def __init__(self, binary, data_dir, env=None):
        self.proc = subprocess.Popen(
            [binary, "standalone", "--http-addr", "127.0.0.1:0", "--flight-addr", "", "--collector-addr", "",
             "--data-dir", data_dir],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "NO_COLOR": "1", "RUST_LOG": "info", **(env or {})},
        )
        self.url = None
        deadline = time.time() + 60
        for line in self.proc.stdout:
            i = line.find("http://127.0.0.1:")
            if i >= 0:
                self.url = line[i:].split()[0]
                break
            if time.time() > deadline:
                break
        if not self.url:
            self.kill()
            raise SystemExit("eddy did not report its address")
        # Keep draining the log so the child never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def totals(self):
        try:
            status, rows = self.request("POST", "/druid/v2/sql",
                                        {"query": "SELECT COUNT(*) AS n, SUM(uid) AS s FROM clicks"})
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None
        if status != 200:
            return None
        return (rows[0]["n"], rows[0]["s"] or 0)


def spec(port):
    return {"type": "kafka", "spec": {
        "dataSchema": {
            "dataSource": "clicks",
            "timestampSpec": {"column": "ts", "format": "millis"},
            "dimensionsSpec": {"dimensions": ["page", {"type": "long", "name": "uid"}]},
            "granularitySpec": {"segmentGranularity": "hour", "queryGranularity": "none", "rollup": False}},
        "ioConfig": {"type": "kafka", "topic": TOPIC, "inputFormat": {"type": "json"},
                     "consumerProperties": {"bootstrap.servers": f"127.0.0.1:{port}"},
                     "useEarliestOffset": True, "taskCount": 2, "replicas": 2,
                     "taskDuration": "PT2S"},
        "tuningConfig": {"type": "kafka", "maxRowsInMemory": 1000}}}


class Events:
    """Produces events with unique ids; counts only acknowledged ones."""

    def __init__(self, port):
        self.producer = Producer({"bootstrap.servers": f"127.0.0.1:{port}", "acks": "all",
                                  "enable.idempotence": True, "linger.ms": 5})
        self.next = 1
        self.acked = []
        self.lock = threading.Lock()

    def _ack(self, err, msg):
        if err is None:
            with self.lock:
                self.acked.append(json.loads(msg.value())["uid"])
        else:
            print(f"delivery failed: {err}", file=sys.stderr)

    def send(self, n):
        base = int(time.time() * 1000)
        for _ in range(n):
            uid = self.next
            self.next += 1
            value = json.dumps({"ts": base, "page": f"/p{uid % 13}", "uid": uid})
            self.producer.produce(TOPIC, value=value, key=f"/p{uid % 13}", on_delivery=self._ack)
            self.producer.poll(0)
        self.producer.flush(30)

    def want(self):
        with self.lock:
            return (len(self.acked), sum(self.acked))


def wait_totals(eddy, want, limit):
    deadline = time.time() + limit
    stable = None
    got = None
    while time.time() < deadline:
        got = eddy.totals()
        if got is not None and got[0] > want[0]:
            raise SystemExit(f"counted twice: {got} > {want}")
        if got == want:
            stable = stable or time.time()
            if time.time() - stable > 3:
                return
        else:
            stable = None
        time.sleep(0.1)
    raise SystemExit(f"totals {got}, want {want}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eddy", required=True)
    ap.add_argument("--noida", required=True)
    args = ap.parse_args()
    rng = random.Random(7)
    work = tempfile.mkdtemp(prefix="eddy-kafka-e2e-")
    port = free_port()
    broker_dir = os.path.join(work, "broker")
    os.makedirs(broker_dir)
    with open(os.path.join(broker_dir, "broker.log"), "w") as log:
        broker = subprocess.Popen(
            [args.noida, "start", "--only", "kafka", "--kafka-port", str(port), "--host",
             "127.0.0.1", "--data-dir", os.path.join(broker_dir, "data")],
            cwd=broker_dir, stdout=log, stderr=log, start_new_session=True)

    def kill_broker():
        # noida-db's entry point runs the server as a child: kill the whole group.
        if broker.poll() is None:
            os.killpg(broker.pid, signal.SIGKILL)
            broker.wait(timeout=30)

    eddy = None
    try:
        wait_port(port)
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
        for f in admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)]).values():
            f.result(30)
        print(f"noida-db on 127.0.0.1:{port}, topic {TOPIC} with {PARTITIONS} partitions")

        data = os.path.join(work, "eddy")
        eddy = Eddy(args.eddy, data)
        status, body = eddy.request("POST", "/druid/indexer/v1/supervisor", spec(port))
        assert status == 200 and body == {"id": "clicks"}, (status, body)

        events = Events(port)
        events.send(2000)
        began = time.time()
        wait_totals(eddy, events.want(), 60)
        print(f"2000 events from confluent-kafka visible in SQL ({time.time() - began - 3:.2f} s)")
        _, st = eddy.request("GET", "/druid/indexer/v1/supervisor/clicks/status")
        p = st["payload"]
        assert p["partitions"] == PARTITIONS and p["stream"] == TOPIC, p
        assert sum(p["latestOffsets"].values()) == 2000, p
        # Two task groups of two replicas each.
        assert len(p["activeTasks"]) + len(p["publishingTasks"]) == 4, p

        # Crashes while producing continues in the background.
        stop = threading.Event()

        def keep_producing():
            while not stop.is_set():
                events.send(rng.randint(20, 80))
                time.sleep(rng.random() * 0.2)

        producer = threading.Thread(target=keep_producing)
        producer.start()
        plan = ["kill", "after_upload", "kill", "after_publish", "kill"]
        for how in plan:
            if how == "kill":
                time.sleep(0.5 + rng.random() * 2.5)
                eddy.kill()
                eddy = Eddy(args.eddy, data)
            else:
                eddy.kill()
                eddy = Eddy(args.eddy, data, env={"EDDY_CRASH_AT": how})
                code = eddy.proc.wait(timeout=120)
                assert code != 0, f"eddy should have aborted at {how}"
                eddy = Eddy(args.eddy, data)
            print(f"crash ({how}) survived; {events.want()[0]} events acknowledged so far")
        stop.set()
        producer.join()
        wait_totals(eddy, events.want(), 120)
        print(f"{events.want()[0]} events counted exactly once across {len(plan)} crashes")

        # An unreachable broker shows in the supervisor's status; queries keep working.
        kill_broker()
        deadline = time.time() + 90
        while True:
            _, st = eddy.request("GET", "/druid/indexer/v1/supervisor/clicks/status")
            p = st["payload"]
            if p["state"] in ("UNHEALTHY_SUPERVISOR", "UNHEALTHY_TASKS"):
                break
            assert time.time() < deadline, f"a dead broker went unnoticed: {p}"
            time.sleep(0.5)
        assert p["recentErrors"], p
        print(f"dead broker reported: {p['detailedState']}: {p['recentErrors'][-1]['message'][:120]}")
        assert eddy.totals() == events.want()
    finally:
        if eddy:
            eddy.kill()
        kill_broker()
    print("kafka e2e: ok")


if __name__ == "__main__":
    main()
