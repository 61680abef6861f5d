"""Serving benchmark: the real app against a hello-world FastAPI app, same server, same load.

    python benchmarks/serving.py [--seconds 5] [--repeats 3]

Needs a lake with a promoted model and an online store (README command 1 builds one); the app
runs on a copy of it so the benchmark's transactions and predictions do not land in the real lake.
Both apps run under uvicorn (1 worker, uvloop, httptools) on 127.0.0.1 and get the same POST
bodies: 2,000 different transactions by the store's customers at its terminals, in turn. /predict
records what it scores (bronze line with the answer, fsynced before the 200), so each request to
the app carries a random (version 4) transaction_id never sent before; ``retry`` sends the 2,000 transactions again
with their ids, answered from the idempotency index. The load comes from wrk when installed, else
from a bounded asyncio client. Writes benchmarks/results/serving.json: predict_rps, hello_rps,
ratio_vs_hello, p50_ms and p99_ms at 4 and 32 connections (medians over the repeats), the same for
retries, cold_start_s (process start to the first 200 from /predict), fsync_us (an append and
fsync of one line on the lake's disk, which every new /predict waits for), and under ``ingest``
the same figures for POST /transactions of transactions never sent before; and the count of
answered transactions against the lines found in bronze.
"""

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from trybank_assets.lake_layout import LakeLayout
from trybank_assets.online_store import load_snapshot
from trybank_assets.settings import get_settings
from trybank_serving.schemas import TransactionIn

RESULT = Path(__file__).parent / "results" / "serving.json"
API_KEY = "benchmark-key"
HEADERS = {"Content-Type": "application/json", "X-API-Key": API_KEY}
TRANSACTIONS = 2_000
TARGET_RATIO = 0.8  # issue 14: /predict at least 0.8x the hello app


def transactions(store: Path, count: int) -> list[str]:
    """Request bodies of ``count`` different transactions by customers and at terminals of the online
    store, so that /predict looks up features the way real traffic does, not one cached customer."""
    snapshot = load_snapshot(store)
    customers, terminals = sorted(snapshot.customers), sorted(snapshot.terminals)
    rng = random.Random(7)
    example = TransactionIn.model_config["json_schema_extra"]["examples"][0]
    event_time = (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [
        json.dumps(
            example
            | {
                "transaction_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "event_time": event_time,
                "customer_id": rng.choice(customers),
                "terminal_id": rng.choice(terminals),
                "amount": round(rng.lognormvariate(3.5, 1.0), 2) + 0.01,
                "merchant_country": rng.choice(["NL", "NL", "NL", "DE", "US"]),
            }
        )
        for _ in range(count)
    ]


@dataclass(frozen=True)
class Load:
    """What the clients send: ``bodies`` in turn to ``path``. With ``unique_ids`` each body holds a
    ``%s`` that becomes a transaction_id never sent before, so every /transactions is a new write."""

    path: str
    bodies: list[str]
    unique_ids: bool = False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: str) -> int:
    request = urllib.request.Request(url, data=body.encode(), headers=HEADERS, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def start(app: str, port: int, env: dict, body: str) -> tuple[subprocess.Popen, float]:
    """Start uvicorn; returns the process and the seconds until /predict first answered 200."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=Path(__file__).parent)
    url = f"http://127.0.0.1:{port}/predict"
    while time.perf_counter() - started < 60:
        try:
            if post(url, body) == 200:
                return process, time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.005)
    process.kill()
    raise RuntimeError(f"{app} did not answer 200 on /predict within 60 s")


def wrk(port: int, connections: int, seconds: int, load: Load) -> dict:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    headers = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in HEADERS.items())
    table = ",\n".join(f"[[{b}]]" for b in load.bodies)
    # A random version-4 UUID per request, as clients send them: the idempotency index's B-tree inserts land on
    # random pages, which costs more than ids that grow in sequence.
    fresh_id = (
        '  local r = math.random\n  body = string.format(body, string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x",'
        " r(0, 65535), r(0, 65535), r(0, 65535), r(0, 4095), r(32768, 49151), r(0, 65535), r(0, 65535), r(0, 65535)))\n"
        if load.unique_ids
        else ""
    )
    script.write_text(
        f'wrk.method = "POST"\n{headers}local bodies = {{\n{table}\n}}\nlocal i = 0\n'
        f"math.randomseed({secrets.randbits(31)})\n"
        f"request = function()\n  i = i % #bodies + 1\n  local body = bodies[i]\n{fresh_id}"
        f'  return wrk.format(nil, "{load.path}", nil, body)\nend\n'
    )
    url = f"http://127.0.0.1:{port}{load.path}"
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    script.unlink()
    if "Non-2xx" in out:
        raise RuntimeError(f"non-2xx answers under load:\n{out}")

    def millis(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": millis("50%"),
        "p99_ms": millis("99%"),
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
    }


async def asyncio_load(port: int, connections: int, seconds: int, load: Load) -> dict:
    """Keep-alive HTTP/1.1 clients on raw sockets: the fallback when wrk is not installed."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    def request(i: int) -> bytes:
        body = load.bodies[i % len(load.bodies)]
        if load.unique_ids:
            body %= uuid.uuid4()
        return (
            f"POST {load.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-API-Key: {API_KEY}\r\nContent-Length: {len(body)}\r\n\r\n{body}"
        ).encode()

    async def client(first: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = first
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            writer.write(request(i))
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.1 201")):
                raise RuntimeError(head.decode(errors="replace"))
            length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - sent)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(c * len(load.bodies) // connections) for c in range(connections)))
    latencies.sort()
    return {
        "rps": len(latencies) / (time.perf_counter() - started),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "requests": len(latencies),
    }


def fsync_latency(folder: Path, appends: int = 2000) -> dict:
    """Microseconds to fsync a file after appending one bronze-sized line, on the lake's disk."""
    path = folder / "fsync-probe.jsonl"
    timings = []
    with open(path, "ab") as f:
        for _ in range(appends):
            f.write(b"x" * 400 + b"\n")
            f.flush()
            started = time.perf_counter()
            os.fsync(f.fileno())
            timings.append(time.perf_counter() - started)
    path.unlink()
    timings.sort()
    return {"p50": round(statistics.median(timings) * 1e6), "p99": round(timings[int(len(timings) * 0.99)] * 1e6)}


def measure(port: int, connections: int, seconds: int, load: Load) -> dict:
    if shutil.which("wrk"):
        return wrk(port, connections, seconds, load)
    return asyncio.run(asyncio_load(port, connections, seconds, load))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    lake = get_settings().lake_root
    if not (lake / "models" / "fraud_model" / "current").exists() or not (lake / "online").is_dir():
        sys.exit(f"{lake} has no promoted model or online store: run `bash scripts/up.sh` (README command 1) first")

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "data_lake"
        for part in ("models", "online"):
            shutil.copytree(lake / part, copy / part, symlinks=True)
        bodies = transactions(LakeLayout(copy).online_store, TRANSACTIONS)
        env = {
            **os.environ,
            "TRYBANK_LAKE_ROOT": str(copy),
            "TRYBANK_API_KEY": API_KEY,
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent), str(Path(__file__).parent)]),
        }
        fresh_bodies = [json.dumps(json.loads(b) | {"transaction_id": "%s"}) for b in bodies]
        loads = {
            "predict": ("trybank_serving.app:app", Load("/predict", fresh_bodies, unique_ids=True)),
            "retry": ("trybank_serving.app:app", Load("/predict", bodies)),
            "hello": ("hello_app:app", Load("/predict", bodies)),
            "ingest": ("trybank_serving.app:app", Load("/transactions", fresh_bodies, unique_ids=True)),
        }
        fsync_us = fsync_latency(copy)
        colds, results, sent = [], {}, {}
        for name, (app, load) in loads.items():
            port = free_port()
            process, cold = start(app, port, env, bodies[0])
            if name == "predict":
                colds.append(cold)
            try:
                sent[name] = measure(port, 32, 2, load)["requests"]  # warm-up
                for connections in (4, 32):
                    runs = [measure(port, connections, args.seconds, load) for _ in range(args.repeats)]
                    sent[name] += sum(r["requests"] for r in runs)
                    results[(name, connections)] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                    results[(name, connections)]["runs_rps"] = [round(r["rps"]) for r in runs]
            finally:
                process.terminate()
                process.wait(timeout=30)
        # wrk counts the answers it read; up to one request per connection was still in flight when
        # a run stopped, and was answered and written after that. The retries' 2,000 transactions
        # are written once, in their warm-up.
        in_flight = 2 * (32 + (4 + 32) * args.repeats)
        answered = sent["predict"] + sent["ingest"] + len(bodies)
        ingested = [
            json.loads(line)["transaction_id"]
            for f in copy.glob("bronze/transactions/date=*/source=api/*.jsonl")
            for line in f.read_bytes().splitlines()
        ]
        for _ in range(args.repeats - 1):  # more cold starts for a median
            process, cold = start("trybank_serving.app:app", free_port(), env, bodies[0])
            colds.append(cold)
            process.terminate()
            process.wait(timeout=30)

    out = {
        "load_generator": "wrk" if shutil.which("wrk") else "asyncio",
        "transactions": TRANSACTIONS,
        "seconds": args.seconds,
        "repeats": args.repeats,
        "cold_start_s": round(statistics.median(colds), 3),
        "cold_start_runs_s": [round(c, 3) for c in colds],
        "fsync_us": fsync_us,
    }
    for connections in (4, 32):
        predict, hello = results[("predict", connections)], results[("hello", connections)]
        retry = results[("retry", connections)]
        out[f"c{connections}"] = {
            "predict_rps": round(predict["rps"]),
            "hello_rps": round(hello["rps"]),
            "ratio_vs_hello": round(predict["rps"] / hello["rps"], 3),
            "p50_ms": round(predict["p50_ms"], 3),
            "p99_ms": round(predict["p99_ms"], 3),
            "hello_p50_ms": round(hello["p50_ms"], 3),
            "hello_p99_ms": round(hello["p99_ms"], 3),
            "predict_runs_rps": predict["runs_rps"],
            "hello_runs_rps": hello["runs_rps"],
            "retry_rps": round(retry["rps"]),
            "retry_ratio_vs_hello": round(retry["rps"] / hello["rps"], 3),
            "retry_p50_ms": round(retry["p50_ms"], 3),
            "retry_p99_ms": round(retry["p99_ms"], 3),
            "retry_runs_rps": retry["runs_rps"],
        }
    out["ingest"] = {
        f"c{connections}": {
            "rps": round(results[("ingest", connections)]["rps"]),
            "p50_ms": round(results[("ingest", connections)]["p50_ms"], 3),
            "p99_ms": round(results[("ingest", connections)]["p99_ms"], 3),
            "runs_rps": results[("ingest", connections)]["runs_rps"],
        }
        for connections in (4, 32)
    }
    out["bronze"] = {"answered_2xx": answered, "bronze_lines": len(ingested)}
    # A closed loop of c connections: throughput <= c / latency, and a new /predict's latency is at
    # least one fsync plus what an empty request costs the server (1 / hello's rate, CPU-bound).
    fsync_s, needed = fsync_us["p50"] / 1e6, TARGET_RATIO * out["c4"]["hello_rps"]
    c4_bound = 4 / (fsync_s + 1 / out["c4"]["hello_rps"])
    out["target"] = {
        "ratio_vs_hello_min": TARGET_RATIO,
        "met_at_c4": out["c4"]["ratio_vs_hello"] >= TARGET_RATIO,
        "met_at_c32": out["c32"]["ratio_vs_hello"] >= TARGET_RATIO,
        "why": (
            "durability before the answer: a new /predict answers only once its bronze line (record and answer) "
            f"is fsynced (p50 {fsync_us['p50']} µs on this disk when idle), group-committed with the requests "
            "queued meanwhile. At 4 connections throughput <= 4 / latency and latency >= one fsync + an empty "
            f"request: <= {c4_bound:,.0f} req/s against the {needed:,.0f} that 0.8x needs, so the disk alone does not "
            f"rule c4 out with group commit; one fsync per answer, in turn, would cap it at {1 / fsync_s:,.0f} "
            f"({1 / fsync_s / out['c4']['hello_rps']:.2f}x). What is left at c4 is latency (p50 "
            f"{out['c4']['p50_ms']} ms against {fsync_us['p50'] / 1000:.2f} ms of fsync): the write, the fsync "
            "under the app's own load and two thread hops per batch, while only 4 requests share each fsync; at 32 "
            "connections the fsync is shared by a larger batch and the limit is the event loop's CPU: "
            f"{1e6 / out['c32']['predict_rps']:.0f} µs per new /predict against {1e6 / out['c32']['hello_rps']:.0f} "
            f"for hello's whole request (0.8x allows {1e6 / (TARGET_RATIO * out['c32']['hello_rps']):.0f}), of which "
            "a new transaction's own Python work (validation, features, model and reasons, bronze line and "
            "fingerprint, idempotency look-up, log row; docs/performance-notes.md, Serving) is over half. "
            "Durability is kept: a scored transaction must not be lost"
        ),
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(out, indent=2) + "\n")
    for connections in (4, 32):
        c = out[f"c{connections}"]
        print(
            f"{connections:>2} connections: predict {c['predict_rps']} req/s vs hello {c['hello_rps']} "
            f"(ratio {c['ratio_vs_hello']}), p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms; retries "
            f"{c['retry_rps']} req/s (ratio {c['retry_ratio_vs_hello']}), p99 {c['retry_p99_ms']} ms"
        )
    for connections in (4, 32):
        c = out["ingest"][f"c{connections}"]
        print(
            f"{connections:>2} connections: POST /transactions {c['rps']} req/s (each fsynced before its 201), "
            f"p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms"
        )
    print(f"{answered} new transactions answered 2xx, {len(ingested)} lines in bronze (≤{in_flight} in flight)")
    print(f"fsync of an appended line: p50 {fsync_us['p50']} µs, p99 {fsync_us['p99']} µs")
    print(f"cold start {out['cold_start_s']} s (median of {len(colds)}); wrote {RESULT}")
    if len(set(ingested)) != len(ingested) or not answered <= len(ingested) <= answered + in_flight:
        sys.exit("bronze does not hold each answered transaction exactly once")


if __name__ == "__main__":
    main()
