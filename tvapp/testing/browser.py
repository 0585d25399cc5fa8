"""Drive Debian's Chromium (headless, fake camera and microphone) through Playwright for tests of the web client.

Playwright's own browser download is never used: Chromium comes from apt (`/usr/bin/chromium`). Each
`Browser` has a fresh profile directory, removed on close. Pages opened through it record console errors
and uncaught exceptions, so a test can assert the page ran clean.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlencode

from playwright.sync_api import BrowserContext, ConsoleMessage, Error, Page, Playwright, sync_playwright

from tvapp.testing import waiting

CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = "apt-get install --no-install-recommends chromium"

CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
    # Several pages share one browser in a test; none may be throttled as a background tab.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    # Offer real host addresses rather than mDNS names, which a test server would have to resolve.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
)

PHONE_VIEWPORT = (390, 844)

_STATS_JS = """
async (pc) => {
  const zero = () => ({packets: 0, bytes: 0, framesDecoded: 0, framesEncoded: 0, framesReceived: 0,
                       totalSamplesReceived: 0, concealedSamples: 0, frameWidth: 0, frameHeight: 0, streams: 0});
  const out = {inbound: {audio: zero(), video: zero()}, outbound: {audio: zero(), video: zero()},
               connectionState: pc ? pc.connectionState : "none"};
  if (!pc || pc.connectionState === "closed") return out;
  const report = await pc.getStats();
  report.forEach((s) => {
    const side = s.type === "inbound-rtp" ? "inbound" : s.type === "outbound-rtp" ? "outbound" : null;
    if (!side || !out[side][s.kind]) return;
    const o = out[side][s.kind];
    o.streams += 1;
    o.packets += (side === "inbound" ? s.packetsReceived : s.packetsSent) || 0;
    o.bytes += (side === "inbound" ? s.bytesReceived : s.bytesSent) || 0;
    o.framesDecoded += s.framesDecoded || 0;
    o.framesEncoded += s.framesEncoded || 0;
    o.framesReceived += s.framesReceived || 0;
    o.totalSamplesReceived += s.totalSamplesReceived || 0;
    o.concealedSamples += s.concealedSamples || 0;
    o.frameWidth = Math.max(o.frameWidth, s.frameWidth || 0);
    o.frameHeight = Math.max(o.frameHeight, s.frameHeight || 0);
  });
  return out;
}
"""


class ScriptPage(Protocol):
    """What the page helpers below need: Playwright's Page (Chromium) and tvapp.testing.firefox.FirefoxPage fit."""

    def evaluate(self, expression: str, arg: Any = None) -> Any:
        """Run a JS function or expression in the page and return its value as JSON."""


class BrowserMissing(RuntimeError):
    """Debian's chromium is not installed."""


def chromium_path() -> str:
    """Return the Chromium executable, or raise BrowserMissing saying how to install it."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    raise BrowserMissing(f"{CHROMIUM} is missing: as root run `{INSTALL_HINT}` (or scripts/install-system-deps.sh)")


def page_url(server_url: str, path: str = "/", **query: str) -> str:
    """Return the URL of `path` on a server, with query parameters (e.g. code, name, autojoin)."""
    url = server_url.rstrip("/") + path
    return f"{url}?{urlencode(query)}" if query else url


class Browser:
    """One headless Chromium with a fresh profile; pages record their console errors in `errors[page]`."""

    def __init__(self, *, viewport: tuple[int, int] = PHONE_VIEWPORT, extra_args: Sequence[str] = ()) -> None:
        self.viewport = viewport
        self.extra_args = tuple(extra_args)
        self.errors: dict[Page, list[str]] = {}
        self._playwright: Playwright | None = None
        self._context: BrowserContext | None = None
        self._profile: str | None = None

    def start(self) -> Browser:
        """Launch Chromium."""
        executable = chromium_path()
        self._profile = tempfile.mkdtemp(prefix="tvapp-chromium-")
        self._playwright = sync_playwright().start()
        try:
            self._context = self._playwright.chromium.launch_persistent_context(
                self._profile,
                executable_path=executable,
                headless=True,
                args=list(CHROMIUM_FLAGS + self.extra_args),
                viewport={"width": self.viewport[0], "height": self.viewport[1]},
                permissions=["camera", "microphone"],
            )
        except Exception:
            self.close()
            raise
        # A persistent context opens with one blank page; closing it keeps `pages` to the ones tests open.
        for page in list(self._context.pages):
            page.close()
        return self

    @property
    def context(self) -> BrowserContext:
        """The browser context (started)."""
        if self._context is None:
            raise RuntimeError("the browser is not started")
        return self._context

    def new_page(self, viewport: tuple[int, int] | None = None) -> Page:
        """Open a blank page that records console errors and uncaught exceptions."""
        page = self.context.new_page()
        if viewport is not None:
            page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
        errors: list[str] = []
        self.errors[page] = errors

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                errors.append(f"console: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: errors.append(f"exception: {exc}"))
        return page

    def open(self, server_url: str, path: str = "/", *, viewport: tuple[int, int] | None = None,
             **query: str) -> Page:
        """Open the web client of a server (query parameters e.g. code=..., name=..., autojoin="1")."""
        page = self.new_page(viewport)
        page.goto(page_url(server_url, path, **query), wait_until="load")
        return page

    def close(self) -> None:
        """Close Chromium and remove its profile."""
        if self._context is not None:
            try:
                self._context.close()
            except Error:
                pass
            self._context = None
        if self._playwright is not None:
            self._playwright.stop()
            self._playwright = None
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    def __enter__(self) -> Browser:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def get_stats(page: ScriptPage, pc_expression: str = "window.tvapp.pc") -> dict[str, Any]:
    """Summarise getStats() of the page's peer connection: per direction and kind, packets, frames, samples."""
    return page.evaluate(f"async () => ({_STATS_JS})({pc_expression})")  # type: ignore[no-any-return]


def app_state(page: ScriptPage) -> dict[str, Any]:
    """Return the web client's debug state (window.tvapp) as plain JSON."""
    return page.evaluate(  # type: ignore[no-any-return]
        """() => { const t = window.tvapp; return {state: t.state, identity: t.identity, room: t.room, self: t.self,
            participants: t.participants, localTracks: t.localTracks, subscriptions: t.subscriptions,
            dominantSid: t.dominantSid, errors: t.errors, offersAnswered: t.offersAnswered,
            connectionState: t.pc ? t.pc.connectionState : null}; }""")


def wait_for_state(page: ScriptPage, state: str, timeout: float = 15.0) -> None:
    """Wait until the web client reaches `state` (idle, preview, joining, joined, left, ended)."""
    wait_for_js(page, "() => window.tvapp && window.tvapp.state", lambda value: value == state, timeout,
                f"the page to reach state {state!r}")


def wait_for_js(page: ScriptPage, expression: str, predicate: Callable[[Any], Any] = bool, timeout: float = 15.0,
                what: str = "") -> Any:
    """Evaluate a JS function in the page until `predicate` holds for its value; return the value.

    Polls with page.evaluate, which the page's CSP allows, unlike Playwright's wait_for_function (it evals).
    """
    last: list[Any] = [None]

    def check() -> bool:
        last[0] = page.evaluate(expression)
        return bool(predicate(last[0]))

    wait_until(check, timeout, 0.1, lambda: f"{what or expression} (last value: {last[0]!r})")
    return last[0]


def wait_until(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1,
               message: str | Callable[[], str] = "condition") -> Any:
    """Poll `check` until it returns a truthy value and return it; raise AssertionError after `timeout`."""
    return waiting.wait_until(check, timeout, message, interval)


def stats_grow(page: ScriptPage, paths: Mapping[str, Sequence[str]], timeout: float = 20.0,
               pc_expression: str = "window.tvapp.pc") -> dict[str, Any]:
    """Wait until every stat named by (direction, kind, field) paths has grown twice; return the last stats."""
    first = get_stats(page, pc_expression)

    def value(stats: dict[str, Any], path: Sequence[str]) -> float:
        direction, kind, field = path
        return float(stats[direction][kind][field])

    last: dict[str, Any] = first
    seen: dict[str, float] = {name: value(first, path) for name, path in paths.items()}
    grown: dict[str, int] = {name: 0 for name in paths}

    def check() -> bool:
        nonlocal last
        last = get_stats(page, pc_expression)
        for name, path in paths.items():
            now = value(last, path)
            if now > seen[name]:
                grown[name] += 1
                seen[name] = now
        return all(count >= 2 for count in grown.values())

    wait_until(check, timeout, 0.5, lambda: f"stats to grow ({grown}); last: {last}")
    return last
