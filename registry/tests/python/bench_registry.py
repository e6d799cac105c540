"""Load figures for a running weft registry (not a test: prints numbers, asserts nothing).

    python3 bench_registry.py URL TOKEN [VERSIONS]

1. Registers VERSIONS (default 1000) versions of one subject under BACKWARD, each the same
   size (only a field default changes), and prints the registration time of the first and
   last 50 versions.
2. Reads that subject for 3 s each: GET latest, GET version VERSIONS/2, POST lookup of a middle
   version; prints requests per second (one keep-alive connection).
3. Write latency: 300 sequential registrations of new schemas on a fresh subject, and the same
   from 4 concurrent clients; prints p50 and p99 in ms.
"""

import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse


def connect(url):
    parts = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)


def call(conn, method, path, body=None, token=None):
    headers = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    answer = conn.getresponse()
    data = answer.read()
    if answer.status != 200:
        raise SystemExit(f"{method} {path}: {answer.status} {data[:300]!r}")
    return json.loads(data) if data else None


def schema(n, field="a"):
    return json.dumps({"type": "record", "name": "Bench", "namespace": "weft.bench",
                       "fields": [{"name": field, "type": "long", "default": n}]})


def rate(conn, method, path, body=None, seconds=3.0):
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        call(conn, method, path, body)
        count += 1
    return count / (time.perf_counter() - start)


def percentiles(samples):
    samples = sorted(samples)
    return statistics.median(samples) * 1000, samples[int(len(samples) * 0.99) - 1] * 1000


def main():
    url, token = sys.argv[1], sys.argv[2]
    versions = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    conn = connect(url)
    subject = f"bench-{int(time.time())}"
    times = []
    for n in range(1, versions + 1):
        start = time.perf_counter()
        call(conn, "POST", f"/subjects/{subject}/versions", {"schema": schema(n)}, token)
        times.append(time.perf_counter() - start)
    first, last = statistics.mean(times[:50]) * 1000, statistics.mean(times[-50:]) * 1000
    print(f"register: versions 1-50 {first:.2f} ms each, versions {versions - 49}-{versions} {last:.2f} ms each ({last / first:.1f}x)")

    middle = versions // 2
    print(f"GET latest of a {versions}-version subject: {rate(conn, 'GET', f'/subjects/{subject}/versions/latest'):.0f} req/s")
    print(f"GET version {middle}: {rate(conn, 'GET', f'/subjects/{subject}/versions/{middle}'):.0f} req/s")
    print(f"POST lookup of version {middle}: {rate(conn, 'POST', f'/subjects/{subject}', {'schema': schema(middle)}):.0f} req/s")

    lat = []
    fresh = subject + "-writes"
    call(conn, "PUT", f"/config/{fresh}", {"compatibility": "NONE"}, token)
    for n in range(300):
        start = time.perf_counter()
        call(conn, "POST", f"/subjects/{fresh}/versions", {"schema": schema(n, f"s{n}")}, token)
        lat.append(time.perf_counter() - start)
    p50, p99 = percentiles(lat)
    print(f"register latency, 1 client: p50 {p50:.2f} ms, p99 {p99:.2f} ms")

    lat, lock = [], threading.Lock()

    def client(k):
        c = connect(url)
        for n in range(100):
            start = time.perf_counter()
            call(c, "POST", f"/subjects/{fresh}-{k}/versions", {"schema": schema(n, f"c{k}_{n}")}, token)
            with lock:
                lat.append(time.perf_counter() - start)

    call(conn, "PUT", "/config", {"compatibility": "NONE"}, token)
    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    p50, p99 = percentiles(lat)
    print(f"register latency, 4 clients: p50 {p50:.2f} ms, p99 {p99:.2f} ms, {len(lat) / elapsed:.0f} registrations/s")
    call(conn, "PUT", "/config", {"compatibility": "BACKWARD"}, token)


if __name__ == "__main__":
    main()
