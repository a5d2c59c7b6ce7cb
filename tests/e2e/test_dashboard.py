"""The operator dashboard in a real browser: Debian's headless Chromium driven by Playwright,
against the real binary and the mock upstreams.

Each test starts its own gateway (mock-a then mock-b behind model `smart`, a store for virtual
keys, an admin listener with an admin key) and opens the page in a fresh browser context, as an
operator would: sign in, look, click. Every test fails on any console error or uncaught page
error. Screenshots of every view, at 1280x800 and at phone width, go to
target/dashboard-screenshots/.

Skipped, with the reason, only when Chromium is absent (`.ci/run` installs it). Playwright's
own browser download cannot work here: it is pointed at Debian's binary.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

import mock_openai as mo
from harness import (BUNDLED, REPO, TEST_PLUGINS_DIR, Gateway, base_config, keys_for, provider,
                     replace_atomically)

CHROMIUM = Path(os.environ.get("FREEWAY_CHROMIUM", "/usr/bin/chromium"))
pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason=f"{CHROMIUM} is missing (apt-get install -y chromium; .ci/run installs it)")

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

SCREENSHOTS = REPO / "target" / "dashboard-screenshots"
ADMIN_KEY = "adm-dashboard-secret-0001"
V1 = TEST_PLUGINS_DIR / "flip-router-v1.wasm"
V2 = TEST_PLUGINS_DIR / "flip-router-v2.wasm"
VIEWS = ("targets", "requests", "usage", "plugins", "keys")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        # Root (CI) cannot use Chromium's sandbox.
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


class Tab:
    """A page in its own context (fresh sessionStorage) that records console errors."""

    def __init__(self, browser: Browser, viewport: dict[str, int] = DESKTOP) -> None:
        self.context = browser.new_context(viewport=viewport)
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def assert_clean(self) -> None:
        assert self.errors == [], "the page logged errors:\n" + "\n".join(self.errors)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tabs(browser: Browser) -> Iterator[list[Tab]]:
    """Tabs a test opens; each is checked for console errors and closed at the end. Listed
    after `gateways` in a test's arguments, so tabs close before their gateway stops."""
    opened: list[Tab] = []
    yield opened
    try:
        for tab in opened:
            tab.assert_clean()
    finally:
        for tab in opened:
            tab.close()


def start(mocks, gateways, *, rpd: int | None = None, flip: bool = False) -> Gateway:
    a = mocks.add("mock-a")
    b = mocks.add("mock-b")
    pb = provider(b, [])
    pb["models"] = {"gpt-b": {"rpd": rpd, "input_price": 0.5, "output_price": 1.5} if rpd
                    else {"input_price": 0.5, "output_price": 1.5}}
    models: dict[str, Any] = {"smart": {"targets": ["mock-a/gpt-a", "mock-b/gpt-b"]}}
    files = {}
    if flip:
        models["flip"] = {"router": "flip-router", "targets": ["mock-a/gpt-a", "mock-b/gpt-b"]}
        files = {"flip-router.wasm": V1}
    cfg = base_config(
        providers={"mock-a": provider(a, ["gpt-a"]), "mock-b": pb},
        models=models,
        admin={"listen": "127.0.0.1:0", "api_key_env": "ADMIN_KEY"},
    )
    return gateways.start(cfg, env={**keys_for(a, b), "ADMIN_KEY": ADMIN_KEY},
                          plugins=BUNDLED, plugin_files=files)


def open_dashboard(browser: Browser, tabs: list[Tab], gw: Gateway,
                   viewport: dict[str, int] = DESKTOP) -> Page:
    """Open the page and sign in with the admin key; wait for the live feed."""
    tab = Tab(browser, viewport)
    tabs.append(tab)
    page = tab.page
    page.goto(f"{gw.admin_url}/admin/dashboard")
    page.get_by_label("Admin key").fill(ADMIN_KEY)
    page.get_by_role("button", name="Open dashboard").click()
    expect(page.locator("#live")).to_have_text("Live", timeout=5000)
    return page


def view(page: Page, name: str) -> None:
    label = {"targets": "Providers", "requests": "Requests", "usage": "Usage",
             "plugins": "Plugins", "keys": "Keys"}[name]
    page.get_by_role("navigation", name="Views").get_by_role("button", name=label).click()
    expect(page.locator(f"#view-{name}")).to_be_visible()


def chat(gw: Gateway, key: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    with gw.http() as c:
        return c.post("/v1/chat/completions", headers=headers,
                      json={"model": "smart", "messages": [{"role": "user", "content": "hi"}]})


# ------------------------------------------------------------------------------------------------


def test_page_refuses_without_the_admin_key_and_opens_with_it(browser, mocks, gateways, tabs):
    gw = start(mocks, gateways)
    with gw.admin() as adm:
        assert adm.get("/admin/targets").status_code == 401
        assert adm.get("/admin/events").status_code == 401
    with gw.http() as c:
        assert c.get("/admin/dashboard").status_code == 404, "never on the public listener"

    tab = Tab(browser)
    tabs.append(tab)
    page = tab.page
    page.goto(f"{gw.admin_url}/admin/dashboard")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("navigation", name="Views")).to_be_hidden()
    expect(page.locator("#view-targets")).to_be_hidden()

    page.get_by_label("Admin key").fill("not-the-key")
    page.get_by_role("button", name="Open dashboard").click()
    expect(page.get_by_role("alert")).to_have_text(re.compile("refused"))
    expect(page.get_by_role("navigation", name="Views")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('freeway-admin-key')") is None

    page.get_by_label("Admin key").fill(ADMIN_KEY)
    page.get_by_role("button", name="Open dashboard").click()
    expect(page.locator("#live")).to_have_text("Live")
    rows = page.locator("#targets-table tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator('tr[data-target="mock-a/gpt-a"]')).to_contain_text("serving")
    assert page.evaluate("sessionStorage.getItem('freeway-admin-key')") == ADMIN_KEY

    # The key lives in this tab's session: a reload stays signed in; signing out forgets it.
    page.reload()
    expect(page.locator("#live")).to_have_text("Live")
    expect(page.get_by_role("heading", name="Sign in")).to_be_hidden()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('freeway-admin-key')") is None


def test_a_request_appears_live_with_its_route_explanation(browser, mocks, gateways, tabs):
    gw = start(mocks, gateways)
    page = open_dashboard(browser, tabs, gw)
    view(page, "requests")
    mocks["mock-a"].script(mo.server_error(503))

    sent = time.monotonic()
    r = chat(gw)
    assert r.status_code == 200, r.text
    request_id = r.headers["x-request-id"]
    row = page.locator(f'tr.request[data-id="{request_id}"]')
    expect(row).to_be_visible(timeout=2000)
    appeared = time.monotonic() - sent
    assert appeared < 2.0, f"the request showed after {appeared:.2f}s"
    print(f"request visible in the dashboard {appeared * 1000:.0f} ms after it was sent")

    expect(row).to_contain_text("mock-b/gpt-b")
    route = row.locator("td.route")
    expect(route).to_contain_text("mock-a/gpt-a: ")
    expect(route).to_contain_text("503")
    expect(route).to_contain_text("mock-b/gpt-b: ok")
    assert route.inner_text() == r.headers["x-freeway-route"]

    row.get_by_role("button", name="Attempts").click()
    steps = page.locator(".details ol.steps li")
    expect(steps).to_have_count(2)
    expect(steps.nth(0)).to_contain_text("mock-a/gpt-a")
    expect(steps.nth(0)).to_contain_text("failed")
    expect(steps.nth(1)).to_contain_text("mock-b/gpt-b")
    expect(steps.nth(1)).to_contain_text("ok")

    # Filters: by model and by status.
    page.get_by_label("Model", exact=True).fill("no-such-model")
    expect(page.locator("tr.request")).to_have_count(0)
    page.get_by_label("Model", exact=True).fill("smart")
    expect(page.locator("tr.request")).to_have_count(1)
    page.get_by_label(re.compile("^Status")).select_option("failed")
    expect(page.locator("tr.request")).to_have_count(0)
    page.get_by_label(re.compile("^Status")).select_option("2")
    expect(page.locator("tr.request")).to_have_count(1)


def test_a_target_cooled_down_by_a_429_shows_its_countdown(browser, mocks, gateways, tabs):
    gw = start(mocks, gateways)
    page = open_dashboard(browser, tabs, gw)
    expect(page.locator('tr[data-target="mock-a/gpt-a"]')).to_contain_text("serving")
    mocks["mock-a"].script(mo.rate_limited(retry_after_s=30))
    r = chat(gw)
    assert r.status_code == 200 and r.headers["x-freeway-provider"] == "mock-b", r.text

    row = page.locator('tr[data-target="mock-a/gpt-a"]')
    expect(row).to_have_attribute("data-state", "cooling", timeout=3000)
    countdown = row.locator(".countdown")

    def seconds_left() -> int:
        m = re.fullmatch(r"(\d+) s left", countdown.inner_text())
        assert m, countdown.inner_text()
        return int(m.group(1))

    first = seconds_left()
    assert 25 <= first <= 30, first
    page.wait_for_timeout(2100)
    later = seconds_left()
    assert first - 3 <= later < first, (first, later)
    expect(page.locator('tr[data-target="mock-b/gpt-b"]')).to_have_attribute("data-state", "serving")


def test_a_replaced_plugin_file_shows_the_reload_event(browser, mocks, gateways, tabs):
    gw = start(mocks, gateways, flip=True)
    page = open_dashboard(browser, tabs, gw)
    view(page, "plugins")
    plugin = page.locator('tr[data-plugin="flip-router"]')
    expect(plugin).to_contain_text("1.0.0")

    replace_atomically(gw.plugin_dir / "flip-router.wasm", V2)
    event = page.locator("#reloads li").filter(has_text="flip-router 2.0.0")
    expect(event).to_have_count(1, timeout=10000)
    expect(event).to_contain_text("file change")
    expect(event).to_contain_text("applied")
    expect(plugin).to_contain_text("2.0.0")

    # The button reloads too, and its event arrives the same way.
    page.get_by_role("button", name="Reload config and plugins").click()
    expect(page.locator("#reload-result")).to_contain_text("Reloaded")
    expect(page.locator("#reloads li").filter(has_text="admin request")).to_have_count(1)


def test_keys_can_be_created_and_revoked_from_the_page(browser, mocks, gateways, tabs):
    gw = start(mocks, gateways)
    page = open_dashboard(browser, tabs, gw)
    view(page, "keys")
    expect(page.locator("#keys-table")).to_contain_text("No virtual keys yet")

    form = page.locator("#key-form")
    form.get_by_label("Name", exact=True).fill("team-a")
    form.get_by_label("Daily budget, USD").fill("2")
    form.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-key-secret")
    expect(secret).to_have_text(re.compile(r"^fw-[0-9a-f]{40}$"))
    key = secret.inner_text()
    row = page.locator('tr[data-key="team-a"]')
    expect(row).to_contain_text("active")
    expect(row).to_contain_text("of $2.00 today")

    assert chat(gw, key).status_code == 200, "the new key works at once"
    assert chat(gw).status_code == 401, "with a key in the store, a request needs one"

    page.get_by_role("button", name="Done").click()
    expect(secret).to_have_count(0)  # shown once, then gone from the page
    row.get_by_role("button", name="Revoke team-a").click()
    row.get_by_role("button", name="Confirm revoking team-a").click()
    expect(row).to_contain_text("revoked")
    assert chat(gw, key).status_code == 401, "a revoked key is refused"


def test_every_view_is_readable_on_a_desktop_and_a_phone(browser, mocks, gateways, tabs):
    """Screenshots of each view (the test artifacts), after traffic that fills every view,
    including a target past 80% of its daily quota; no view overflows a phone's width."""
    gw = start(mocks, gateways, rpd=10, flip=True)
    mocks["mock-a"].script(*[mo.server_error(502)] * 9)
    for _ in range(9):
        assert chat(gw).status_code == 200
    with gw.admin(ADMIN_KEY) as adm:
        created = adm.post("/admin/keys", json={"name": "team-a", "owner": "ops", "daily_usd": 1})
        assert created.status_code == 201, created.text
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = open_dashboard(browser, tabs, gw, viewport)
        expect(page.locator('tr[data-target="mock-b/gpt-b"]')).to_have_class(re.compile("warn-row"))
        for name in VIEWS:
            view(page, name)
            if name == "requests":
                expect(page.locator("tr.request")).to_have_count(9)
                page.locator("tr.request").first.get_by_role("button", name="Attempts").click()
                expect(page.locator("tr.details")).to_have_count(1)
            if name == "usage":
                expect(page.locator("#usage-charts figure")).to_have_count(3)
                expect(page.locator("#usage-warnings")).to_contain_text(
                    re.compile(r"mock-b/gpt-b: 9\d% of today's free quota used"))
                expect(page.locator("#usage-breakdowns")).to_contain_text("mock-b")
            if name == "plugins":
                expect(page.locator('tr[data-plugin="priority-fallback"]')).to_be_visible()
            if name == "keys":
                expect(page.locator('tr[data-key="team-a"]')).to_contain_text("$0 of $1.00 today")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            wide = page.evaluate("""[...document.querySelectorAll('body *')]
                .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
                .slice(0, 5).map((e) => e.tagName + '#' + e.id + '.' + e.className)""")
            assert overflow <= 0, f"{name} at {size} width overflows by {overflow}px: {wide}"
            path = SCREENSHOTS / f"{name}-{size}.png"
            page.screenshot(path=str(path), full_page=True)
            assert path.stat().st_size > 5000, path


def test_the_feed_streams_events_and_ends_at_shutdown(mocks, gateways):
    """The SSE stream itself, without a browser: hello, the backlog, live requests with their
    steps, target changes; and a gateway told to stop ends it at once instead of waiting out
    its drain for a dashboard that never hangs up."""
    gw = start(mocks, gateways)
    assert chat(gw).status_code == 200
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=gw.admin_url, timeout=10) as c:
        with c.stream("GET", "/admin/events", headers=headers) as stream:
            assert stream.headers["content-type"] == "text/event-stream"
            lines = stream.iter_lines()
            names: list[str] = []

            def next_event() -> tuple[str, dict[str, Any]]:
                name, data = "", ""
                for line in lines:
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        data = line[6:]
                    elif line == "" and name:
                        names.append(name)
                        return name, json.loads(data)
                raise AssertionError(f"the stream ended after {names}")

            assert next_event()[0] == "hello"
            name, backlog = next_event()
            assert name == "request" and backlog["model"] == "smart", backlog
            assert next_event()[0] == "targets"
            r = chat(gw)
            name, live = next_event()
            assert name == "request" and live["id"] == r.headers["x-request-id"], live
            assert live["seq"] > backlog["seq"]
            assert live["steps"] == [{"target": "mock-a/gpt-a", "verdict": "ok",
                                      "detail": live["steps"][0]["detail"]}], live
            assert "prompt" not in json.dumps(live).replace("prompt_tokens", ""), live

            started = time.monotonic()
            gw.proc.send_signal(signal.SIGTERM)
            assert list(lines) is not None  # drains to the end of the stream
            code = gw.proc.wait(10)
            took = time.monotonic() - started
    assert code == 0 and took < 5, f"exit {code} after {took:.1f}s with a feed open"
