#!/usr/bin/env python3
"""Side by side, in one run: Eddy's native queries and DuckDB (native table) on the same
hits-like data, for ClickBench queries 1-8, 11-13, 16, 20 and 21. Also measures Eddy's segment
build rate and segment size against the Parquet+zstd file.

Hot time: the best of runs 2..N (N = --runs, default 5). Answers are compared (distinct
counts within 2%) so a fast wrong answer cannot pass.

    benches/harness/run native --rows 10000000
"""
import argparse
import http.client
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
IV = ["2013-01-01/2014-01-01"]
LONGS = ["WatchID", "CounterID", "ClientIP", "RegionID", "UserID", "OS", "UserAgent", "IsRefresh", "ResolutionWidth",
         "MobilePhone", "TraficSourceID", "SearchEngineID", "AdvEngineID", "WindowClientWidth", "WindowClientHeight",
         "IsLink", "IsDownload", "DontCountHits", "RefererHash", "URLHash", "EventDate"]
# Long dimensions that get bitmap indexes: the ones these queries filter or group on. Druid's
# default for long dimensions is no index; other long dimensions are stored as compressed blocks.
INDEXED = {"UserID", "AdvEngineID", "MobilePhone"}
# Free-text columns nobody filters by exact value keep no bitmap index (Druid's
# createBitmapIndex: false); filters on them scan dictionary ids instead.
UNINDEXED_STRINGS = {"Title", "URL", "Referer"}
STRINGS = ["Title", "URL", "Referer", "MobilePhoneModel", "SearchPhrase"]


def spec(parquet):
    dims = [{"type": "string", "name": c, "createBitmapIndex": c not in UNINDEXED_STRINGS} for c in STRINGS]
    dims += [{"type": "long", "name": c, "createBitmapIndex": c in INDEXED} for c in LONGS]
    return {
        "type": "index_parallel",
        "spec": {
            "dataSchema": {
                "dataSource": "hits",
                "timestampSpec": {"column": "EventTime", "format": "millis"},
                "dimensionsSpec": {"dimensions": dims},
                "metricsSpec": [],
                "granularitySpec": {"segmentGranularity": "day", "queryGranularity": "none", "rollup": False},
            },
            "ioConfig": {"type": "index_parallel", "inputSource": {"type": "local", "files": [parquet]},
                         "inputFormat": {"type": "parquet"}},
            "tuningConfig": {"type": "index_parallel", "maxRowsPerSegment": 5000000, "maxRowsInMemory": 12000000},
        },
    }


def q(query_type, **kw):
    return dict({"queryType": query_type, "dataSource": "hits", "intervals": IV}, **kw)


def not_eq(col, value):
    return {"type": "not", "field": {"type": "selector", "dimension": col, "value": value}}


COUNT = {"type": "count", "name": "c"}

# (ClickBench query number, native query, extract comparable rows from the native result)
NATIVE = [
    (1, q("timeseries", granularity="all", aggregations=[COUNT]), lambda r: [[r[0]["result"]["c"]]]),
    (2, q("timeseries", granularity="all", aggregations=[COUNT], filter=not_eq("AdvEngineID", "0")),
     lambda r: [[r[0]["result"]["c"]]]),
    (3, q("timeseries", granularity="all", aggregations=[
        {"type": "longSum", "name": "s", "fieldName": "AdvEngineID"}, COUNT,
        {"type": "doubleSum", "name": "w", "fieldName": "ResolutionWidth"}],
        postAggregations=[{"type": "arithmetic", "name": "avg", "fn": "/", "fields": [
            {"type": "fieldAccess", "fieldName": "w"}, {"type": "fieldAccess", "fieldName": "c"}]}]),
     lambda r: [[r[0]["result"]["s"], r[0]["result"]["c"], r[0]["result"]["avg"]]]),
    (4, q("timeseries", granularity="all", aggregations=[{"type": "doubleSum", "name": "u", "fieldName": "UserID"}, COUNT],
          postAggregations=[{"type": "arithmetic", "name": "avg", "fn": "/", "fields": [
              {"type": "fieldAccess", "fieldName": "u"}, {"type": "fieldAccess", "fieldName": "c"}]}]),
     lambda r: [[r[0]["result"]["avg"]]]),
    (5, q("timeseries", granularity="all", aggregations=[{"type": "cardinality", "name": "u", "fields": ["UserID"]}]),
     lambda r: [[r[0]["result"]["u"]]]),
    (6, q("timeseries", granularity="all", aggregations=[{"type": "cardinality", "name": "u", "fields": ["SearchPhrase"]}]),
     lambda r: [[r[0]["result"]["u"]]]),
    (7, q("timeseries", granularity="all", aggregations=[{"type": "longMin", "name": "lo", "fieldName": "EventDate"},
                                                         {"type": "longMax", "name": "hi", "fieldName": "EventDate"}]),
     lambda r: [[r[0]["result"]["lo"] // 86400000, r[0]["result"]["hi"] // 86400000]]),
    (8, q("topN", granularity="all", dimension={"type": "default", "dimension": "AdvEngineID", "outputName": "a", "outputType": "LONG"},
          threshold=1000, metric="c", aggregations=[COUNT], filter=not_eq("AdvEngineID", "0")),
     lambda r: [[x["a"], x["c"]] for x in r[0]["result"]] if r else []),
    (11, q("topN", granularity="all", dimension="MobilePhoneModel", threshold=10, metric="u",
           aggregations=[{"type": "cardinality", "name": "u", "fields": ["UserID"]}], filter=not_eq("MobilePhoneModel", "")),
     lambda r: [[x["MobilePhoneModel"], x["u"]] for x in r[0]["result"]]),
    (12, q("groupBy", granularity="all", dimensions=[{"type": "default", "dimension": "MobilePhone", "outputName": "MobilePhone", "outputType": "LONG"}, "MobilePhoneModel"],
           aggregations=[{"type": "cardinality", "name": "u", "fields": ["UserID"]}], filter=not_eq("MobilePhoneModel", ""),
           limitSpec={"type": "default", "limit": 10, "columns": [{"dimension": "u", "direction": "descending"}]}),
     lambda r: [[x["event"]["MobilePhone"], x["event"]["MobilePhoneModel"], x["event"]["u"]] for x in r]),
    (13, q("topN", granularity="all", dimension="SearchPhrase", threshold=10, metric="c", aggregations=[COUNT],
           filter=not_eq("SearchPhrase", "")),
     lambda r: [[x["SearchPhrase"], x["c"]] for x in r[0]["result"]]),
    (16, q("topN", granularity="all", dimension={"type": "default", "dimension": "UserID", "outputName": "u", "outputType": "LONG"},
           threshold=10, metric="c", aggregations=[COUNT]),
     lambda r: [[x["u"], x["c"]] for x in r[0]["result"]]),
    (20, q("scan", columns=["UserID"], filter={"type": "selector", "dimension": "UserID", "value": "435090932899640449"}),
     lambda r: [[e["UserID"]] for b in r for e in b["events"]]),
    (21, q("timeseries", granularity="all", aggregations=[COUNT], filter={"type": "like", "dimension": "URL", "pattern": "%google%"}),
     lambda r: [[r[0]["result"]["c"]]]),
]


def sql_queries():
    path = os.path.join(HERE, "queries.sql")
    return [line.strip() for line in open(path) if line.strip()]


def http_json(conn, method, path, body=None):
    conn.request(method, path, body=None if body is None else json.dumps(body), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"{method} {path} -> {resp.status}: {data[:300]!r}")
    return json.loads(data)


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_eddy(binary, data_dir, threads):
    env = dict(os.environ, NO_COLOR="1", RUST_LOG="warn,eddy=info", EDDY_QUERY__THREADS=str(threads))
    log = open(os.path.join(data_dir, "eddy.log"), "w")
    proc = subprocess.Popen([binary, "standalone", "--data-dir", data_dir, "--http-addr", "127.0.0.1:0", "--collector-addr", "",
                             "--flight-addr", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=log, env=env, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        m = re.search(r"http://(127\.0\.0\.1:\d+)", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise RuntimeError("eddy did not report its address")


def ingest(host, parquet, pid):
    conn = http.client.HTTPConnection(host, timeout=3600)
    cpu0, t0 = cpu_seconds(pid), time.time()
    task = http_json(conn, "POST", "/druid/indexer/v1/task", spec(parquet))["task"]
    while True:
        st = http_json(conn, "GET", f"/druid/indexer/v1/task/{task}/status")["status"]
        if st["status"] != "RUNNING":
            break
        time.sleep(0.5)
    wall, cpu = time.time() - t0, cpu_seconds(pid) - cpu0
    if st["status"] != "SUCCESS":
        raise RuntimeError(f"ingestion failed: {st.get('errorMsg')}")
    return st["rowStats"]["processed"], wall, cpu


def time_runs(fn, runs):
    times, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return times, result


def close(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=0.02, abs_tol=1e-6)
    return str(a) == str(b)


def same(eddy_rows, duck_rows, ordered):
    if len(eddy_rows) != len(duck_rows):
        return False
    if not ordered:
        eddy_rows, duck_rows = sorted(eddy_rows, key=str), sorted(duck_rows, key=str)
    return all(len(x) == len(y) and all(close(p, q) for p, q in zip(x, y)) for x, y in zip(eddy_rows, duck_rows))


def update_doc(path, marker, text):
    doc = open(path).read() if os.path.exists(path) else ""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    block = f"{start}\n{text}\n{end}"
    if start in doc and end in doc:
        doc = doc[:doc.index(start)] + block + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    open(path, "w").write(doc)


def geomean(xs):
    return math.exp(sum(math.log(max(x, 1e-6)) for x in xs) / len(xs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--parquet", required=True)
    ap.add_argument("--eddy", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "release", "eddy"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--doc", default=os.path.join(REPO, "docs", "benchmarks.md"))
    a = ap.parse_args()
    import duckdb

    parquet = os.path.abspath(a.parquet)
    work = tempfile.mkdtemp(prefix="eddy-bench-")
    sql = sql_queries()

    proc, host = start_eddy(a.eddy, work, a.threads)
    try:
        rows, wall, cpu = ingest(host, parquet, proc.pid)
        conn = http.client.HTTPConnection(host, timeout=600)
        simple = http_json(conn, "GET", "/druid/coordinator/v1/datasources?simple")
        seg_bytes = simple[0]["properties"]["segments"]["size"]
        seg_count = simple[0]["properties"]["segments"]["count"]
        eddy = {}
        for num, native, extract in NATIVE:
            times, result = time_runs(lambda: http_json(conn, "POST", "/druid/v2", native), a.runs)
            eddy[num] = (min(times[1:]) if len(times) > 1 else times[0], extract(result))
    finally:
        proc.terminate()
        proc.wait(timeout=60)

    duck = duckdb.connect(os.path.join(work, "hits.duckdb"))
    duck.execute(f"SET threads={a.threads}")
    t = time.time()
    duck.execute(f"CREATE TABLE hits AS SELECT * FROM read_parquet('{parquet}')")
    duck.execute("CHECKPOINT")
    duck_load = time.time() - t
    results = []
    for num, _, _ in NATIVE:
        query = sql[num - 1].rstrip(";")
        if num == 7:
            query = "SELECT CAST(EPOCH(MIN(EventDate)) / 86400 AS BIGINT), CAST(EPOCH(MAX(EventDate)) / 86400 AS BIGINT) FROM hits"
        times, res = time_runs(lambda: duck.execute(query).fetchall(), a.runs)
        duck_hot = min(times[1:]) if len(times) > 1 else times[0]
        eddy_hot, eddy_rows = eddy[num]
        duck_rows = [list(r) for r in res]
        ordered = num in (11, 12, 13, 16)
        agree = same(eddy_rows, duck_rows, ordered) or (num in (11, 12, 13, 16) and len(eddy_rows) == len(duck_rows)
                                                         and all(close(x[-1], y[-1]) for x, y in zip(eddy_rows, duck_rows)))
        results.append((num, sql[num - 1], eddy_hot, duck_hot, agree))

    parquet_bytes = os.path.getsize(parquet)
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on this machine ({os.cpu_count()} cores), {rows:,} rows, "
        f"{a.threads} query threads for both, hot = best of runs 2-{a.runs}, in one run.",
        "",
        "| Q | ClickBench SQL | Eddy native (ms) | DuckDB native (ms) | Eddy / DuckDB | same answer |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for num, text, e, d, ok in results:
        short = text if len(text) <= 90 else text[:87] + "..."
        lines.append(f"| {num} | `{short}` | {e * 1000:.2f} | {d * 1000:.2f} | {e / d:.2f} | {'yes' if ok else 'NO'} |")
    ge, gd = geomean([r[2] for r in results]), geomean([r[3] for r in results])
    lines += [
        f"| | **geomean** | **{ge * 1000:.2f}** | **{gd * 1000:.2f}** | **{ge / gd:.2f}** | |",
        "",
        f"- Segment build: {rows:,} rows in {wall:.1f} s wall, {cpu:.1f} CPU s: "
        f"**{rows / cpu:,.0f} rows/s per core** ({rows / wall:,.0f} rows/s wall). DuckDB loaded the same Parquet in {duck_load:.1f} s.",
        f"- Size: Eddy segments {seg_bytes / 1e6:,.0f} MB in {seg_count} segments vs. the Parquet+zstd file "
        f"{parquet_bytes / 1e6:,.0f} MB: **{seg_bytes / parquet_bytes:.2f}x**.",
    ]
    table = "\n".join(lines)
    print(table)
    update_doc(a.doc, "native-vs-duckdb", table)
    if not all(r[4] for r in results):
        print("WARNING: some answers differ; see the table", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
