#!/usr/bin/env python3
"""Apache Superset against a running `eddy standalone`, through Superset's own REST API with
SQLite metadata on loopback: add the database (druid:// via pydruid), test the connection,
list schemas, tables and columns, create a dataset, and run a time-series chart query whose
rows must come back with the expected values. Superset and Eddy are started and stopped here.

    superset.py --eddy target/debug/eddy --superset-venv DIR
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clients  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, base):
        self.base = base
        self.token = None

    def call(self, method, path, body=None):
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, text


def superset_env(home):
    cfg = os.path.join(home, "superset_config.py")
    with open(cfg, "w") as f:
        f.write(f'SECRET_KEY = "local-test-only-not-secret-0123456789abcdef"\n'
                f'SQLALCHEMY_DATABASE_URI = "sqlite:///{home}/superset.db"\n'
                'WTF_CSRF_ENABLED = False\n'
                'FEATURE_FLAGS = {}\n')
    return dict(os.environ, SUPERSET_CONFIG_PATH=cfg, SUPERSET_HOME=home, FLASK_APP="superset")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eddy", required=True)
    ap.add_argument("--superset-venv", required=True)
    a = ap.parse_args()
    bin_dir = os.path.join(a.superset_venv, "bin")
    superset = os.path.join(bin_dir, "superset")
    home = tempfile.mkdtemp(prefix="eddy-superset-")
    env = superset_env(home)
    log = open(os.path.join(home, "superset.log"), "w")

    def cli(*args):
        subprocess.run([superset, *args], env=env, check=True, stdout=log, stderr=log)

    cli("db", "upgrade")
    cli("fab", "create-admin", "--username", "admin", "--firstname", "Ad", "--lastname", "Min",
        "--email", "admin@example.invalid", "--password", "admin")
    cli("init")

    work = tempfile.mkdtemp(prefix="eddy-superset-data-")
    eddy, addr, _ = clients.start(a.eddy, work, False)
    port = free_port()
    sup = subprocess.Popen([superset, "run", "-h", "127.0.0.1", "-p", str(port), "--with-threads"],
                           env=env, stdout=log, stderr=log)
    try:
        clients.load_sample(addr)
        api = Api(f"http://127.0.0.1:{port}")
        for _ in range(120):
            try:
                if urllib.request.urlopen(api.base + "/health", timeout=2).read() == b"OK":
                    break
            except OSError:
                pass
            time.sleep(1)
        else:
            raise RuntimeError("Superset did not become healthy")
        status, body = api.call("POST", "/api/v1/security/login",
                                {"username": "admin", "password": "admin", "provider": "db", "refresh": False})
        assert status == 200, body
        api.token = body["access_token"]

        uri = f"druid://{addr}/druid/v2/sql/"
        status, body = api.call("POST", "/api/v1/database/test_connection/",
                                {"sqlalchemy_uri": uri, "database_name": "eddy"})
        assert status == 200 and body.get("message") == "OK", (status, body)

        status, body = api.call("POST", "/api/v1/database/", {"database_name": "eddy", "sqlalchemy_uri": uri})
        assert status == 201, (status, body)
        db_id = body["id"]

        status, body = api.call("GET", f"/api/v1/database/{db_id}/schemas/")
        assert status == 200 and "druid" in body["result"], (status, body)

        status, body = api.call("GET", f"/api/v1/database/{db_id}/tables/?q=(schema_name:druid)")
        assert status == 200, (status, body)
        tables = [t["value"] for t in body["result"]]
        assert "clicks" in tables, tables

        status, body = api.call("GET", f"/api/v1/database/{db_id}/table_metadata/?name=clicks&schema=druid")
        assert status == 200, (status, body)
        columns = {c["name"] for c in body["columns"]}
        assert {"__time", "country", "bytes", "latency_ms"} <= columns, columns

        status, body = api.call("POST", "/api/v1/dataset/", {"database": db_id, "schema": "druid", "table_name": "clicks"})
        assert status == 201, (status, body)
        ds_id = body["id"]

        # What a time-series bar chart sends: day grain, a filter, a metric, a group by.
        query = {
            "datasource": {"id": ds_id, "type": "table"},
            "force": True,
            "queries": [{
                "columns": [{"timeGrain": "P1D", "columnType": "BASE_AXIS", "sqlExpression": "__time",
                             "label": "__time", "expressionType": "SQL"}, "country"],
                "metrics": ["count", {"expressionType": "SIMPLE", "column": {"column_name": "bytes"},
                                      "aggregate": "SUM", "label": "SUM(bytes)"}],
                "filters": [{"col": "country", "op": "IN", "val": ["US", "DE"]},
                            {"col": "__time", "op": "TEMPORAL_RANGE", "val": "2023-06-27 : 2023-06-29"}],
                "orderby": [["count", False]],
                "row_limit": 100,
            }],
            "result_format": "json",
            "result_type": "full",
        }
        status, body = api.call("POST", "/api/v1/chart/data", query)
        assert status == 200, (status, body)
        rows = body["result"][0]["data"]
        sample = clients.sample_rows()
        want = {}
        for r in sample:
            if r["country"] in ("US", "DE"):
                key = (r["time"][:10], r["country"])
                c, b = want.get(key, (0, 0))
                want[key] = (c + 1, b + r["bytes"])
        got = {}
        for r in rows:
            day = time.strftime("%Y-%m-%d", time.gmtime(r["__time"] / 1000)) if isinstance(r["__time"], (int, float)) \
                else str(r["__time"])[:10]
            got[(day, r["country"])] = (r["count"], r["SUM(bytes)"])
        assert got == want, (got, want)
        print(f"Superset 6.1: database, schemas, tables, columns, dataset and a chart query: ok ({len(rows)} rows)")
    except Exception:
        log.flush()
        sys.stderr.write(open(log.name).read()[-6000:])
        raise
    finally:
        sup.terminate()
        try:
            sup.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sup.kill()
        eddy.terminate()
        eddy.wait(timeout=30)
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
