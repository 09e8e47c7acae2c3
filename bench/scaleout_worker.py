"""One hub ingest worker for the scale-out benchmark (a child process of bench/scaleout.py).

Subscribes (shared subscription), prints ``ready``, stores until it has been idle for
``--idle`` seconds after its first message, then prints one JSON line: readings stored,
CPU-seconds spent from ``ready`` on, and the times of its first and last store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time

from hub.db.engine import make_engine, make_session_factory
from hub.ingest.service import IngestService
from hub.metrics import HubMetrics
from hub.settings import HubSettings
from hub.timeseries.sql import SqlTimeSeriesStore


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def main(a: argparse.Namespace) -> None:
    settings = HubSettings(env="dev", worker_id=a.worker_id, database={"url": a.db_url, "migrate": False},
                           mqtt={"port": a.port, "password": a.password, "clean_session": True})  # fmt: skip
    engine = make_engine(a.db_url)
    metrics = HubMetrics()
    service = IngestService(settings, make_session_factory(engine), SqlTimeSeriesStore(engine), metrics)
    await service.start()
    await asyncio.wait_for(service.subscribed.wait(), 15)
    cpu0 = cpu_s()
    print("ready", flush=True)
    get = metrics.registry.get_sample_value
    last_n, last_change, first = 0.0, time.monotonic(), 0.0
    while True:
        await asyncio.sleep(0.05)
        n = get("safehome_readings_stored_total") or 0.0
        now = time.monotonic()
        if n != last_n:
            if not last_n:
                first = time.time()
            last_n, last_change = n, now
        elif last_n and now - last_change > a.idle:
            break
    last = time.time() - (time.monotonic() - last_change)
    used = cpu_s() - cpu0
    await service.stop()
    engine.dispose()
    print(
        json.dumps({"worker": a.worker_id, "readings": last_n, "cpu_s": used, "first": first, "last": last}),
        flush=True,
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    for name in ("--port", "--password", "--db-url", "--worker-id"):
        ap.add_argument(name, required=True)
    ap.add_argument("--idle", type=float, default=3.0)
    asyncio.run(main(ap.parse_args()))
