"""Request workers (`server.worker_threads`): each client connection is served start to end by
one worker thread, given to the one serving the fewest connections; the gauge
`freeway_worker_connections{worker}` shows where connections are. Requests, streams and the
admin API work the same on any number of workers; a bad value is refused at start.

A worker that runs out of work spins for `server.idle_spin_us` before it sleeps: it serves the
same with spinning off or at its longest, and once idle it sleeps (a spinner that never stopped
would burn a core). An idle gateway as a whole rarely wakes (the plugin deadline ticker sleeps
while no plugin instance is leased)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from harness import base_config, chat_body, keys_for, poll, provider, scrape, sse_events


@pytest.fixture
def start(mocks, gateways):
    mock = mocks.add("mock-a")

    def start(**server):
        cfg = base_config(
            server=server,
            admin={"listen": "127.0.0.1:0"},
            providers={"mock-a": provider(mock, ["gpt-a"])},
            models={"m": {"targets": ["mock-a/gpt-a"]}})
        return gateways.start(cfg, env=keys_for(mock))

    return start


def worker_connections(gw) -> dict[str, float]:
    """The gauge by worker, scraped on a connection of its own (which the gauge counts)."""
    with gw.admin() as admin:
        response = admin.get("/metrics")
    assert response.status_code == 200, response.text[:300]
    return {s.labels["worker"]: s.value for s in scrape(response.text)
            if s.name == "freeway_worker_connections"}


def answer(client: httpx.Client, stream: bool = False) -> str:
    response = client.post("/v1/chat/completions", json=chat_body("m", stream=stream))
    assert response.status_code == 200, response.text[:300]
    if stream:
        events = sse_events(response.text)
        assert events[-1] == "[DONE]", events
        return response.text
    return response.json()["choices"][0]["message"]["content"]


def test_connections_are_spread_over_the_workers_and_counted_until_they_close(start):
    gw = start(worker_threads=3)
    assert worker_connections(gw).keys() == {"0", "1", "2"}
    clients = [gw.http() for _ in range(3)]
    try:
        # Each keep-alive connection answers twice (JSON, then a stream) on its worker.
        for client in clients:
            assert answer(client)
            assert answer(client, stream=True)
        # Three open connections on three workers; the scrape's own is the fourth.
        counts = worker_connections(gw)
        assert sorted(counts.values()) == [1, 1, 2], counts
    finally:
        for client in clients:
            client.close()
    # Closed connections leave the count: only the scrape's own remains.
    poll(lambda: sum(worker_connections(gw).values()) == 1, timeout=5,
         what="closed connections leave freeway_worker_connections")


def test_one_worker_serves_everything(start):
    gw = start(worker_threads=1)
    with gw.http() as first, gw.http() as second:
        assert answer(first)
        assert answer(second, stream=True)
        assert answer(first, stream=True)
        assert worker_connections(gw) == {"0": 3}


def test_default_is_one_worker_per_core(start):
    gw = start()
    with gw.http() as client:
        assert answer(client)
    workers = worker_connections(gw)
    assert workers and workers.keys() == {str(i) for i in range(len(workers))}, workers


@pytest.mark.parametrize("key,value", [
    ("worker_threads", -1), ("worker_threads", 5000), ("worker_threads", "two"),
    ("idle_spin_us", -1), ("idle_spin_us", 1001), ("idle_spin_us", "50us"),
])
def test_bad_worker_settings_are_refused(mocks, gateways, key, value):
    mock = mocks.add("mock-a")
    cfg = base_config(server={key: value},
                      providers={"mock-a": provider(mock, ["gpt-a"])},
                      models={"m": {"targets": ["mock-a/gpt-a"]}})
    stderr = gateways.start_refused(cfg, env=keys_for(mock))
    assert f"server.{key}" in stderr, stderr


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("spin_us", [0, 1000])
def test_workers_serve_with_any_spin_and_sleep_once_idle(start, spin_us):
    gw = start(worker_threads=2, idle_spin_us=spin_us)
    with gw.http() as first, gw.http() as second:
        for _ in range(50):
            assert answer(first)
            assert answer(second, stream=True)
    # Idle now: the workers sleep. Over 1.5 s a worker still spinning would use ~1.5 s of CPU;
    # a sleeping gateway uses a few ms (the plugin deadline ticker, the ledger's idle check).
    time.sleep(0.3)
    before = cpu_seconds(gw.proc.pid)
    time.sleep(1.5)
    used = cpu_seconds(gw.proc.pid) - before
    assert used < 0.2, f"{used:.2f} s of CPU in 1.5 s idle with idle_spin_us={spin_us}"


def wakeups(pid: int) -> int:
    """Context switches of all the process's threads so far: each is a thread that slept and woke."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def test_an_idle_gateway_rarely_wakes(start):
    gw = start(worker_threads=2)
    with gw.http() as client:
        for _ in range(20):
            assert answer(client)
    # Once idle, the plugin deadline ticker sleeps too (it ticked every 2 ms: 500 wakeups a
    # second); what is left is the health and key checks' timers, a few dozen a second.
    time.sleep(0.5)
    before = wakeups(gw.proc.pid)
    time.sleep(1.0)
    woke = wakeups(gw.proc.pid) - before
    assert woke < 150, f"{woke} wakeups in 1 s idle"
    # And it serves at once afterwards.
    with gw.http() as client:
        assert answer(client, stream=True)
