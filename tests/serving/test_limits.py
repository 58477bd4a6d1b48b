"""Overload: bounded concurrency answers 503 at once instead of queueing without end."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx

from repradar.settings import Settings
from serving.middleware import Metrics, Runtime, ServiceMiddleware


def _app(release: asyncio.Event):
    async def app(scope, receive, send):
        await release.wait()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def test_overload_gets_503_and_probes_still_answer():
    async def run():
        release = asyncio.Event()
        settings = Settings(max_in_flight=2, max_waiting=1, queue_timeout_s=0.2)
        holder = SimpleNamespace(current=SimpleNamespace(version="7"))
        app = ServiceMiddleware(_app(release), Runtime(settings=settings, holder=holder, metrics=Metrics()))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            busy = [asyncio.create_task(c.get("/api/v1/x")) for _ in range(3)]  # 2 run, 1 waits
            await asyncio.sleep(0.05)
            rejected = await c.get("/api/v1/x")  # the waiting room is full: refused at once
            assert rejected.status_code == 503
            assert rejected.json()["code"] == "overloaded" and rejected.headers["retry-after"] == "1"
            assert rejected.headers["x-model-version"] == "7"
            live = asyncio.create_task(c.get("/health/live"))  # probes bypass the limit
            await asyncio.sleep(0.3)  # the waiting one times out
            release.set()
            results = [r.status_code for r in await asyncio.gather(*busy)]
            assert sorted(results) == [200, 200, 503]
            assert (await live).status_code == 200
            after = await c.get("/api/v1/x")  # capacity is back
            assert after.status_code == 200

    asyncio.run(run())
