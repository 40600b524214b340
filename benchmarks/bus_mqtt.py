"""QoS 1 latency and throughput of the MQTT bus, with TCP_NODELAY on and off.

Run from the checkout: `python benchmarks/bus_mqtt.py` (a measurement, not a test).
It starts private Mosquitto brokers on free loopback ports, as the test fixture does
(one with `set_tcp_nodelay true`, one with Mosquitto's default, false), or uses the
broker at ACCORD_MQTT_URL (then only the client's setting varies). For each setting:

* publish: `await bus.publish(...)` until PUBACK, one at a time (p50/p99);
* round trip: A publishes a request, B echoes it, A receives the reply - the
  chair -> delegate -> chair path of a session (p50/p99), one at a time;
* throughput: N publishes issued at once (`asyncio.gather`), counted until the
  subscriber (on another connection) holds all N; also one-at-a-time publishes/s.

Why TCP_NODELAY matters: a QoS 1 exchange is small packets answered by small
packets; with Nagle's algorithm a packet sent while a previous one is unacknowledged
waits for the peer's delayed ACK (~40 ms on Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.mqtt_broker when run as a script

from accord.bus.mqtt import MqttBus  # noqa: E402
from tests.mqtt_broker import MosquittoBroker, find_mosquitto  # noqa: E402


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def timed(n: int, step: Callable[[int], Awaitable[None]]) -> list[float]:
    samples = []
    for i in range(n):
        start = time.perf_counter()
        await step(i)
        samples.append(time.perf_counter() - start)
    return samples


async def measure(url: str, *, nodelay: bool, n: int, burst: int) -> dict[str, float]:
    topic = f"bench/{os.getpid()}/{'on' if nodelay else 'off'}"
    payload = b"x" * 200  # about one signed envelope
    a = MqttBus.from_url(url, tcp_nodelay=nodelay, timeout_s=60)
    b = MqttBus.from_url(url, tcp_nodelay=nodelay, timeout_s=60)
    async with a, b:
        requests = b.subscribe(f"{topic}/req")
        replies = a.subscribe(f"{topic}/rep")
        sink = b.subscribe(f"{topic}/bulk")
        async with requests, replies, sink:

            async def echo() -> None:
                async for message in requests:
                    await b.publish(f"{topic}/rep", message.payload)

            echoer = asyncio.create_task(echo())
            for _ in range(50):  # warm up: connections, caches, broker routes
                await a.publish(f"{topic}/req", b"w")
                await anext(replies)

            async def publish(i: int) -> None:
                await a.publish(f"{topic}/other", payload)

            async def round_trip(i: int) -> None:
                await a.publish(f"{topic}/req", payload)
                await anext(replies)

            pub = await timed(n, publish)
            rtt = await timed(n, round_trip)
            echoer.cancel()

            start = time.perf_counter()
            for _ in range(n):
                await a.publish(f"{topic}/other", payload)
            sequential = n / (time.perf_counter() - start)

            start = time.perf_counter()
            await asyncio.gather(*(a.publish(f"{topic}/bulk", payload) for _ in range(burst)))
            for _ in range(burst):
                await anext(sink)
            concurrent = burst / (time.perf_counter() - start)
    ms = 1000.0
    return {
        "publish_p50_ms": statistics.median(pub) * ms,
        "publish_p99_ms": percentile(pub, 99) * ms,
        "round_trip_p50_ms": statistics.median(rtt) * ms,
        "round_trip_p99_ms": percentile(rtt, 99) * ms,
        "sequential_publish_per_s": sequential,
        "burst_delivered_per_s": concurrent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=500, help="samples per latency figure")
    parser.add_argument("--burst", type=int, default=5000, help="messages in the burst")
    parser.add_argument("--json", action="store_true", help="print one JSON object per row")
    args = parser.parse_args()

    rows: list[tuple[str, str, bool]] = []  # (label, url, client nodelay)
    with ExitStack() as stack:
        url = os.environ.get("ACCORD_MQTT_URL")
        if url:
            rows = [("external broker", url, True), ("external broker", url, False)]
        else:
            if find_mosquitto() is None:
                sys.exit("mosquitto is not installed and ACCORD_MQTT_URL is not set")
            for broker_nodelay in (True, False):
                directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                extra = "" if broker_nodelay else "set_tcp_nodelay false\n"
                broker = MosquittoBroker(directory, extra_config=extra)
                broker.start()
                stack.callback(broker.stop)
                label = f"broker nodelay {'on' if broker_nodelay else 'off'}"
                rows += [(label, broker.url, True), (label, broker.url, False)]
        if not args.json:
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            print(
                f"QoS 1, 200-byte payloads, n={args.n}, burst={args.burst}, "
                f"{os.cpu_count()} CPUs, load average {load:.1f}"
            )
            print(
                f"{'':22} {'client':>7} {'publish p50/p99 ms':>19} "
                f"{'round trip p50/p99 ms':>22} {'seq pub/s':>10} {'burst msg/s':>12}"
            )
        for label, url, nodelay in rows:
            result = asyncio.run(measure(url, nodelay=nodelay, n=args.n, burst=args.burst))
            if args.json:
                print(json.dumps({"broker": label, "client_nodelay": nodelay, **result}))
                continue
            print(
                f"{label:22} {'on' if nodelay else 'off':>7} "
                f"{result['publish_p50_ms']:>9.3f}/{result['publish_p99_ms']:<9.3f} "
                f"{result['round_trip_p50_ms']:>11.3f}/{result['round_trip_p99_ms']:<10.3f} "
                f"{result['sequential_publish_per_s']:>10.0f} "
                f"{result['burst_delivered_per_s']:>12.0f}"
            )


if __name__ == "__main__":
    main()
