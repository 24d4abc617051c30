#!/usr/bin/env python3
"""Real SQL clients against a running `eddy standalone`: pydruid's DB-API, pydruid's SQLAlchemy
dialect (what Superset uses), and the Arrow Flight SQL clients (ADBC and pyarrow.flight) when
--flight is given. Loads examples/clicks-sample.json first. Every check asserts exact values.

    clients.py --eddy target/debug/eddy
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def start(binary, data_dir, flight):
    log = open(os.path.join(data_dir, "eddy.log"), "w")
    args = [binary, "standalone", "--data-dir", data_dir, "--http-addr", "127.0.0.1:0", "--collector-addr", ""]
    if flight:
        args += ["--flight-addr", "127.0.0.1:0"]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE, stderr=log, text=True, env=dict(os.environ, NO_COLOR="1"))
    http_addr = flight_addr = None
    deadline = time.time() + 60
    while time.time() < deadline and not (http_addr and (flight_addr or not flight)):
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"listening on http://(127\.0\.0\.1:\d+)", line)
        if m:
            http_addr = m.group(1)
        m = re.search(r"Flight SQL on grpc://(127\.0\.0\.1:\d+)", line)
        if m:
            flight_addr = m.group(1)
    if not http_addr:
        proc.kill()
        raise RuntimeError("eddy did not report its HTTP address; see " + log.name)
    return proc, http_addr, flight_addr


def post(addr, path, body):
    req = urllib.request.Request(f"http://{addr}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req).read())


def sample_rows():
    """The sample rows, for computing expected answers independently of Eddy."""
    with open(os.path.join(REPO, "examples", "clicks-sample.json")) as f:
        return [json.loads(line) for line in f if line.strip()]


def load_sample(addr):
    spec = json.load(open(os.path.join(REPO, "examples", "clicks-index.json")))
    spec["spec"]["ioConfig"]["inputSource"]["baseDir"] = os.path.join(REPO, "examples")
    task = post(addr, "/druid/indexer/v1/task", spec)["task"]
    for _ in range(600):
        st = json.loads(urllib.request.urlopen(f"http://{addr}/druid/indexer/v1/task/{task}/status").read())
        if st["status"]["status"] != "RUNNING":
            assert st["status"]["status"] == "SUCCESS", st
            return
        time.sleep(0.1)
    raise RuntimeError("ingestion did not finish")


def check_pydruid_dbapi(addr):
    from pydruid.db import connect
    host, port = addr.split(":")
    conn = connect(host=host, port=int(port), path="/druid/v2/sql/", scheme="http")
    cur = conn.cursor()
    cur.execute("SELECT 1")
    assert cur.fetchall()[0][0] == 1
    cur.execute("SELECT COUNT(*) AS c FROM clicks")
    assert cur.fetchone().c == 1000
    cur.execute("""
        SELECT country, COUNT(*) AS views, APPROX_COUNT_DISTINCT(user_id) AS visitors
        FROM clicks WHERE country IN (%(a)s, %(b)s)
        GROUP BY country ORDER BY views DESC""", {"a": "US", "b": "IN"})
    rows = cur.fetchall()
    assert [r.country for r in rows] == ["IN", "US"], rows
    assert [r.views for r in rows] == [157, 139], rows
    assert [d[0] for d in cur.description] == ["country", "views", "visitors"]
    cur.execute("SELECT TIME_FLOOR(__time, 'P1D') AS d, COUNT(*) AS c FROM clicks GROUP BY 1 ORDER BY 1")
    days = cur.fetchall()
    assert [(r.d, r.c) for r in days] == [("2023-06-27T00:00:00.000Z", 500), ("2023-06-28T00:00:00.000Z", 500)], days
    try:
        cur.execute("SELECT nope FROM clicks")
        raise AssertionError("an unknown column must fail")
    except Exception as e:  # pydruid raises ProgrammingError with Druid's error text
        assert "nope" in str(e), e
    print("pydruid DB-API: ok")


def check_sqlalchemy(addr):
    import sqlalchemy as sa
    engine = sa.create_engine(f"druid://{addr}/druid/v2/sql/")
    insp = sa.inspect(engine)
    assert "druid" in insp.get_schema_names()
    assert "clicks" in insp.get_table_names(schema="druid")
    assert insp.has_table("clicks")
    assert not insp.has_table("nope")
    cols = {c["name"]: c for c in insp.get_columns("clicks", schema="druid")}
    assert isinstance(cols["__time"]["type"], sa.types.TIMESTAMP), cols["__time"]
    assert isinstance(cols["country"]["type"], sa.types.String)
    assert isinstance(cols["bytes"]["type"], sa.types.BigInteger)
    assert cols["country"]["nullable"] is True
    with engine.connect() as c:
        n = c.execute(sa.text('SELECT COUNT(*) AS "count" FROM "druid"."clicks" '
                              "WHERE \"__time\" >= '2023-06-27 00:00:00.000000' "
                              "AND \"__time\" < '2023-06-28 00:00:00.000000'")).scalar()
        assert n == 500, n
    print("pydruid SQLAlchemy dialect: ok")


def check_flight(flight_addr):
    import adbc_driver_flightsql.dbapi as adbc
    import pyarrow.flight as fl
    conn = adbc.connect(f"grpc://{flight_addr}")
    cur = conn.cursor()
    cur.execute("SELECT country, COUNT(*) AS c FROM clicks GROUP BY country ORDER BY c DESC LIMIT 2")
    t = cur.fetch_arrow_table()
    assert t.column_names == ["country", "c"], t.column_names
    assert t.column("c").to_pylist() == [157, 152], t
    assert t.column("country").to_pylist() == ["IN", None], t
    cur.execute("SELECT COUNT(*) AS c FROM clicks WHERE country = ?", parameters=("US",))
    assert cur.fetchone()[0] == 139
    objs = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    tables = [t["table_name"] for cat in objs for s in (cat["catalog_db_schemas"] or [])
              for t in (s["db_schema_tables"] or [])]
    assert "clicks" in tables, tables
    schema = conn.adbc_get_table_schema("clicks", db_schema_filter="druid")
    assert schema.field("__time").type.__str__().startswith("timestamp"), schema
    try:
        cur.execute("SELECT nope FROM clicks")
        raise AssertionError("an unknown column must fail")
    except Exception as e:
        assert "nope" in str(e), e
    cur.close()
    conn.close()
    client = fl.FlightClient(f"grpc://{flight_addr}")
    info = client.get_flight_info(fl.FlightDescriptor.for_command(
        _statement_query("SELECT page FROM clicks WHERE user_id = 'u144' ORDER BY page LIMIT 1")))
    table = client.do_get(info.endpoints[0].ticket).read_all()
    assert table.num_rows == 1, table
    print("ADBC Flight SQL and pyarrow.flight: ok")


def _statement_query(sql):
    """A Flight SQL CommandStatementQuery wrapped in google.protobuf.Any, encoded by hand."""
    def field(num, data):
        key = (num << 3) | 2
        out = bytearray([key])
        n = len(data)
        while True:
            b = n & 0x7F
            n >>= 7
            out.append(b | (0x80 if n else 0))
            if not n:
                break
        return bytes(out) + data
    inner = field(1, sql.encode())
    url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    return field(1, url) + field(2, inner)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eddy", required=True)
    ap.add_argument("--flight", action="store_true")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="eddy-clients-")
    proc, addr, flight_addr = start(a.eddy, work, a.flight)
    try:
        load_sample(addr)
        check_pydruid_dbapi(addr)
        check_sqlalchemy(addr)
        if a.flight:
            check_flight(flight_addr)
    except Exception:
        proc.terminate()
        proc.wait(timeout=30)
        sys.stderr.write(open(os.path.join(work, "eddy.log")).read()[-4000:])
        raise
    proc.terminate()
    proc.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
