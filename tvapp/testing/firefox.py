"""Drive Debian's firefox-esr (headless, fake camera and microphone) over WebDriver BiDi for tests of the web client.

No Playwright build, no geckodriver, no extra package: Firefox is started with `--remote-debugging-port 0`, which
makes it serve WebDriver BiDi (W3C JSON messages over a websocket) on a free loopback port it writes to the
profile's WebDriverBiDiServer.json; `BiDiConnection` speaks that protocol with the `websockets` library tvapp
already depends on. Each `Firefox` has a fresh profile in a temporary directory whose user.js turns on fake media
devices and autoplay and turns off first-run pages, telemetry, updates, safe browsing, the captive-portal check
and every proxyable connection except loopback; the directory is removed on close, after the whole process group
has exited.

The API follows the Chromium helper (tvapp.testing.browser): `Firefox().start()`, `open(server_url, **query)`,
`errors[page]` (console errors and uncaught exceptions), and pages with `goto`, `evaluate` (a JS function or
expression, awaited, result as JSON), `click`, `screenshot` and `close`; browser.py's page helpers (app_state,
wait_for_js, get_stats, stats_grow) take either kind of page.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tvapp.testing import waiting
from tvapp.testing.browser import PHONE_VIEWPORT, page_url

FIREFOX = "/usr/bin/firefox-esr"
INSTALL_HINT = "apt-get install --no-install-recommends firefox-esr"

# The one proxy every non-loopback http(s) request is sent to: port 9 (discard) on loopback, where nothing listens.
_DEAD_PROXY = ("127.0.0.1", 9)

FIREFOX_PREFS: dict[str, bool | int | str] = {
    # Media: fake camera (a changing colour) and microphone (a tone), no permission prompt, autoplay allowed.
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.autoplay.default": 0,
    "media.autoplay.block-webaudio": False,
    # ICE: offer the loopback address (the test SFU announces only 127.0.0.1) and real addresses, not mDNS names.
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    # No first-run, welcome, default-browser or what's-new pages.
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.page": 0,
    "browser.startup.homepage": "about:blank",
    "browser.startup.homepage_override.mstone": "ignore",
    "startup.homepage_welcome_url": "about:blank",
    "startup.homepage_welcome_url.additional": "",
    "browser.aboutwelcome.enabled": False,
    "trailhead.firstrun.didSeeAboutWelcome": True,
    "browser.newtabpage.enabled": False,
    "browser.tabs.warnOnClose": False,
    "browser.warnOnQuit": False,
    "datareporting.policy.firstRunURL": "",
    # No telemetry, studies, experiments or updates.
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.server": "",
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.normandy.enabled": False,
    "app.shield.optoutstudies.enabled": False,
    "messaging-system.rsexperimentloader.enabled": False,
    "app.update.disabledForTesting": True,
    "app.update.auto": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.blocklist.enabled": False,
    "media.gmp-manager.updateEnabled": False,
    "services.settings.server": "http://127.0.0.1:9/remote-settings",
    # No safe browsing lists, captive-portal or connectivity probes, prefetching or DNS over HTTPS.
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.downloads.remote.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.http.speculative-parallel-limit": 0,
    "network.trr.mode": 5,
    "browser.region.network.url": "",
    "geo.provider.network.url": "",
    # Everything but loopback goes to a dead proxy, so nothing leaves the machine.
    "network.proxy.type": 1,
    "network.proxy.http": _DEAD_PROXY[0],
    "network.proxy.http_port": _DEAD_PROXY[1],
    "network.proxy.ssl": _DEAD_PROXY[0],
    "network.proxy.ssl_port": _DEAD_PROXY[1],
    "network.proxy.share_proxy_settings": True,
    "network.proxy.no_proxies_on": "localhost, 127.0.0.1, [::1]",
    "network.proxy.allow_hijacking_localhost": False,
    # Several pages share one browser in a test; none may be throttled as a background tab.
    "dom.min_background_timeout_value": 4,
    "dom.timeout.enable_budget_timer_throttling": False,
}

# Call a function (or await an expression) in the page and return its value as JSON text (undefined -> missing).
_EVALUATE_WRAPPER = """async (argText) => {{
  const target = ({expression});
  const value = typeof target === "function" ? await target(JSON.parse(argText)) : await target;
  return JSON.stringify({{value}});
}}"""


class FirefoxMissing(RuntimeError):
    """Debian's firefox-esr is not installed."""


class FirefoxError(RuntimeError):
    """A WebDriver BiDi command failed, or a script threw in the page."""


def firefox_path() -> str:
    """Return the firefox-esr executable, or raise FirefoxMissing saying how to install it."""
    if os.access(FIREFOX, os.X_OK):
        return FIREFOX
    raise FirefoxMissing(f"{FIREFOX} is missing: as root run `{INSTALL_HINT}` (or scripts/install-system-deps.sh)")


def user_js(prefs: Mapping[str, bool | int | str]) -> str:
    """Return the text of a profile's user.js setting `prefs`."""
    return "".join(f"user_pref({json.dumps(name)}, {json.dumps(value)});\n" for name, value in prefs.items())


class BiDiConnection:
    """A WebDriver BiDi session over one websocket: numbered commands with replies, and events to callbacks."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._stack = ExitStack()
        self._ws: ClientConnection = self._stack.enter_context(connect(url, max_size=None, open_timeout=timeout))
        self._ids = itertools.count(1)
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._handlers: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self._reader = threading.Thread(target=self._read, name="firefox-bidi", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for text in self._ws:
                message = json.loads(text)
                if "id" in message:
                    with self._lock:
                        waiter = self._replies.pop(message["id"], None)
                    if waiter is not None:
                        waiter.put(message)
                elif message.get("type") == "event":
                    for handler in list(self._handlers.get(message["method"], ())):
                        handler(message["params"])
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                waiters, self._replies = list(self._replies.values()), {}
            for waiter in waiters:
                waiter.put({"type": "error", "error": "connection closed", "message": "the browser went away"})

    def on(self, method: str, handler: Callable[[dict[str, Any]], None]) -> None:
        """Call `handler(params)` for every event `method` (subscribe to it with session.subscribe too)."""
        self._handlers.setdefault(method, []).append(handler)

    def send(self, method: str, params: Mapping[str, Any] | None = None, timeout: float | None = None) -> Any:
        """Send one command and return its result; raise FirefoxError on an error reply or no reply in time."""
        ident = next(self._ids)
        waiter: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1)
        with self._lock:
            self._replies[ident] = waiter
        try:
            self._ws.send(json.dumps({"id": ident, "method": method, "params": dict(params or {})}))
            reply = waiter.get(timeout=self.timeout if timeout is None else timeout)
        except ConnectionClosed as exc:
            raise FirefoxError(f"{method}: the browser went away") from exc
        except queue.Empty:
            raise FirefoxError(f"{method}: no reply within {timeout or self.timeout} s") from None
        finally:
            with self._lock:
                self._replies.pop(ident, None)
        if reply.get("type") == "error":
            raise FirefoxError(f"{method}: {reply.get('error')}: {reply.get('message')}")
        return reply.get("result", {})

    def close(self) -> None:
        """Close the websocket."""
        self._stack.close()
        self._reader.join(5)


class FirefoxPage:
    """One top-level browsing context (a tab) of a Firefox; the methods mirror Playwright's Page."""

    def __init__(self, browser: Firefox, context: str) -> None:
        self.browser = browser
        self.context = context
        self.closed = False

    def __repr__(self) -> str:
        return f"FirefoxPage({self.context})"

    @property
    def url(self) -> str:
        """The page's current URL."""
        return str(self.evaluate("() => location.href"))

    def goto(self, url: str, wait_until: str = "load", timeout: float = 30.0) -> None:
        """Navigate and wait for the load event ("load") or DOMContentLoaded ("domcontentloaded")."""
        wait = {"load": "complete", "domcontentloaded": "interactive"}[wait_until]
        self.browser.bidi.send("browsingContext.navigate", {"context": self.context, "url": url, "wait": wait},
                               timeout)

    def evaluate(self, expression: str, arg: Any = None, timeout: float = 30.0) -> Any:
        """Run a JS function (called with `arg`, awaited) or expression in the page; return its value as JSON."""
        result = self.browser.bidi.send("script.callFunction", {
            "functionDeclaration": _EVALUATE_WRAPPER.format(expression=expression),
            "arguments": [{"type": "string", "value": json.dumps(arg)}],
            "target": {"context": self.context},
            "awaitPromise": True,
            "resultOwnership": "none",
        }, timeout)
        if result.get("type") == "exception":
            details = result.get("exceptionDetails", {})
            raise FirefoxError(f"script threw: {details.get('text', details)}")
        return json.loads(result["result"]["value"]).get("value")

    def click(self, selector: str) -> None:
        """Click the centre of the first element matching `selector` with a real (trusted) pointer action."""
        box = self.evaluate("""(selector) => {
            const element = document.querySelector(selector);
            if (!element) return null;
            element.scrollIntoView({block: "center", inline: "center"});
            const r = element.getBoundingClientRect();
            return {x: Math.round(r.left + r.width / 2), y: Math.round(r.top + r.height / 2)};
        }""", selector)
        if box is None:
            raise FirefoxError(f"no element matches {selector!r}")
        self.browser.bidi.send("input.performActions", {"context": self.context, "actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [{"type": "pointerMove", "x": box["x"], "y": box["y"]},
                        {"type": "pointerDown", "button": 0}, {"type": "pointerUp", "button": 0}]}]})

    def is_visible(self, selector: str) -> bool:
        """Whether the first element matching `selector` exists, has a box and is not visibility:hidden."""
        return bool(self.evaluate("""(selector) => {
            const element = document.querySelector(selector);
            return Boolean(element && element.getClientRects().length
                           && getComputedStyle(element).visibility !== "hidden");
        }""", selector))

    def text_content(self, selector: str) -> str | None:
        """The textContent of the first element matching `selector` (None if there is none)."""
        value = self.evaluate("(s) => { const e = document.querySelector(s); return e ? e.textContent : null; }",
                              selector)
        return None if value is None else str(value)

    def bring_to_front(self) -> None:
        """Make this tab the selected one (a background tab may present no video frames)."""
        self.browser.bidi.send("browsingContext.activate", {"context": self.context})

    def screenshot(self, path: str | os.PathLike[str] | None = None) -> bytes:
        """Capture the viewport as PNG bytes (also written to `path` if given)."""
        result = self.browser.bidi.send("browsingContext.captureScreenshot", {"context": self.context})
        png = base64.b64decode(result["data"])
        if path is not None:
            Path(path).write_bytes(png)
        return png

    def set_viewport_size(self, size: Mapping[str, int]) -> None:
        """Set the viewport to {"width", "height"} CSS pixels."""
        self.browser.bidi.send("browsingContext.setViewport", {
            "context": self.context, "viewport": {"width": size["width"], "height": size["height"]}})

    def close(self) -> None:
        """Close the tab (its peer connections and media with it)."""
        if not self.closed:
            self.closed = True
            self.browser.bidi.send("browsingContext.close", {"context": self.context})
            self.browser.forget(self)


class Firefox:
    """One headless firefox-esr with a fresh profile; pages record their console errors in `errors[page]`."""

    def __init__(self, *, viewport: tuple[int, int] = PHONE_VIEWPORT,
                 prefs: Mapping[str, bool | int | str] | None = None, startup_timeout: float = 60.0) -> None:
        self.viewport = viewport
        self.prefs = {**FIREFOX_PREFS, **(prefs or {})}
        self.startup_timeout = startup_timeout
        self.errors: dict[FirefoxPage, list[str]] = {}
        self.pages: list[FirefoxPage] = []
        self.process: subprocess.Popen[bytes] | None = None
        self._bidi: BiDiConnection | None = None
        self._home: str | None = None
        self._log: Any = None
        self._first_context: str | None = None

    @property
    def bidi(self) -> BiDiConnection:
        """The WebDriver BiDi session (started)."""
        if self._bidi is None:
            raise RuntimeError("firefox is not started")
        return self._bidi

    @property
    def log_path(self) -> Path:
        """Firefox's own stdout and stderr, kept until close (read it when a start fails)."""
        if self._home is None:
            raise RuntimeError("firefox is not started")
        return Path(self._home) / "firefox.log"

    def start(self) -> Firefox:
        """Launch Firefox, open a BiDi session and subscribe to console messages."""
        executable = firefox_path()
        self._home = tempfile.mkdtemp(prefix="tvapp-firefox-")
        profile = Path(self._home) / "profile"
        profile.mkdir()
        (profile / "user.js").write_text(user_js(self.prefs))
        # MOZ_REMOTE_SETTINGS_DEVTOOLS lets services.settings.server (a dead loopback port) take effect.
        env = {**os.environ, "MOZ_HEADLESS": "1", "MOZ_CRASHREPORTER_DISABLE": "1", "HOME": self._home,
               "MOZ_REMOTE_SETTINGS_DEVTOOLS": "1"}
        env.pop("DISPLAY", None)
        try:
            self._log = open(self.log_path, "wb")  # noqa: SIM115 -- closed in close()
            self.process = subprocess.Popen(
                [executable, "--headless", "--no-remote", "--remote-debugging-port", "0", "-profile", str(profile),
                 "about:blank"],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True)
            port = self._wait_for_port(profile / "WebDriverBiDiServer.json")
            self._bidi = BiDiConnection(f"ws://127.0.0.1:{port}/session")
            self.bidi.send("session.new", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": True}}})
            self.bidi.on("log.entryAdded", self._on_log)
            self.bidi.send("session.subscribe", {"events": ["log.entryAdded"]})
            contexts = self.bidi.send("browsingContext.getTree", {"maxDepth": 0})["contexts"]
            self._first_context = contexts[0]["context"] if contexts else None
        except Exception:
            self.close()
            raise
        return self

    def _wait_for_port(self, server_file: Path) -> int:
        def port() -> int:  # 0 until the file is written
            if self.process is not None and self.process.poll() is not None:
                raise FirefoxError(f"firefox exited with {self.process.returncode}: {self._log_tail()}")
            try:
                return int(json.loads(server_file.read_text())["ws_port"])
            except (OSError, ValueError, KeyError):
                return 0

        return waiting.wait_until(port, self.startup_timeout,
                                  lambda: f"firefox to serve WebDriver BiDi: {self._log_tail()}", 0.1)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except (OSError, RuntimeError):
            return ""

    def _on_log(self, entry: dict[str, Any]) -> None:
        context = entry.get("source", {}).get("context")
        page = next((p for p in self.pages if p.context == context), None)
        if page is None:
            return
        if entry.get("type") == "javascript":
            self.errors[page].append(f"exception: {entry.get('text')}")
        elif entry.get("level") == "error":
            self.errors[page].append(f"console: {entry.get('text')}")

    def new_page(self, viewport: tuple[int, int] | None = None) -> FirefoxPage:
        """Open a blank tab (the start page's, the first time) that records console errors and exceptions."""
        if self._first_context is not None:
            context, self._first_context = self._first_context, None
        else:
            context = self.bidi.send("browsingContext.create", {"type": "tab"})["context"]
        page = FirefoxPage(self, context)
        self.pages.append(page)
        self.errors[page] = []
        width, height = viewport or self.viewport
        page.set_viewport_size({"width": width, "height": height})
        return page

    def open(self, server_url: str, path: str = "/", *, viewport: tuple[int, int] | None = None,
             **query: str) -> FirefoxPage:
        """Open the web client of a server (query parameters e.g. code=..., name=..., autojoin="1")."""
        page = self.new_page(viewport)
        page.goto(page_url(server_url, path, **query))
        return page

    def forget(self, page: FirefoxPage) -> None:
        """Drop a closed page from `pages` (its `errors` entry stays for the test to read)."""
        if page in self.pages:
            self.pages.remove(page)

    def close_pages(self) -> None:
        """Close every open tab but keep the browser running (one tab stays blank: Firefox needs a window)."""
        keep = self.bidi.send("browsingContext.create", {"type": "tab"})["context"] if self.pages else None
        for page in list(self.pages):
            page.close()
            self.errors.pop(page, None)
        if keep is not None:
            self._first_context = keep

    def close(self, timeout: float = 15.0) -> None:
        """Quit Firefox (BiDi browser.close, then SIGTERM/SIGKILL to its process group) and remove its profile."""
        if self._bidi is not None:
            try:
                self._bidi.send("browser.close", timeout=5)
            except FirefoxError:
                pass
            self._bidi.close()
            self._bidi = None
        if self.process is not None:
            self._stop_process_group(self.process, timeout)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    @staticmethod
    def _stop_process_group(process: subprocess.Popen[bytes], timeout: float) -> None:
        """Wait for Firefox to quit, then end what is left of its own process group (content processes)."""
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            os.killpg(process.pid, sig)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    os.killpg(process.pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)

    def __enter__(self) -> Firefox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
