"""pytest fixtures for the end-to-end suite; the machinery lives in harness.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest

from harness import LIVE, GatewayFactory, Mocks

_FRAME = re.compile(r"^\s+(\d+: |at )")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Remember where each running gateway's stderr stood when the test body started."""
    item._freeway_marks = {id(gw): gw.log_mark() for gw in LIVE}
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """When a test fails, show what the gateways said on stderr during it."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    marks = getattr(item, "_freeway_marks", {})
    for gw in LIVE:
        code = gw.proc.poll()
        state = "running" if code is None else f"EXITED with {code}"
        since = marks.get(id(gw), 0)
        # Backtrace frames drown the panic message; keep everything else.
        lines = [ln for ln in gw.stderr_since(since).splitlines() if not _FRAME.match(ln)]
        if lines or code is not None:
            report.sections.append(
                (f"freeway {gw.url or gw.config_path} ({state}) stderr", "\n".join(lines[-60:])))


@pytest.fixture(scope="session")
def plugin_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One compiled-plugin cache for the whole run, so only the first gateway compiles."""
    return tmp_path_factory.mktemp("freeway-cache")


@pytest.fixture(scope="module")
def module_gateways(tmp_path_factory: pytest.TempPathFactory,
                    plugin_cache: Path) -> Iterator[GatewayFactory]:
    """Gateways shared by every test of a module (started once, stopped after the module)."""
    f = GatewayFactory(tmp_path_factory.mktemp("gw"), plugin_cache)
    yield f
    f.stop_all()


@pytest.fixture
def gateways(tmp_path: Path, plugin_cache: Path) -> Iterator[GatewayFactory]:
    """Gateways of one test's own, for tests whose host state (cooldowns) must not leak."""
    f = GatewayFactory(tmp_path, plugin_cache)
    yield f
    f.stop_all()


@pytest.fixture(scope="module")
def module_mocks() -> Iterator[Mocks]:
    """Mock upstreams shared by a module; a module resets their scripts before each test."""
    ms = Mocks()
    yield ms
    ms.stop()


@pytest.fixture
def mocks() -> Iterator[Mocks]:
    ms = Mocks()
    yield ms
    ms.stop()
