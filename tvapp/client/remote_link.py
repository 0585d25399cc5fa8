"""The phone's link to a TV: pairing over HTTP, the /v1/remote websocket, and the file of paired TVs.

`tv_info`, `request_pairing` and `confirm_pairing` call the TV's pairing endpoints (their bodies and answers are
tvapp.protocol.pairing's); `RemoteLink` is one authenticated remote-control connection (tvapp.protocol.remote's
phone end drives it). What pairing gave us is kept by tvapp.client.paired_tvs.

With an https TV there is no CA to ask: the TV's self-signed certificate is pinned by its sha256 fingerprint,
and the pin is checked on every connection before anything secret (a code, a credential) is written to it.
HTTP uses the standard library (http.client in a thread), so that the pin is checked between the TLS handshake
and the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.client
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from tvapp.core.errors import CodedError
from tvapp.logs import redact_frames
from tvapp.protocol.fields import ProtocolError, Record
from tvapp.protocol.pairing import Paired, PairingConfirm, PairingRefusal, PairingRequest, PairingStarted, TvInfo
from tvapp.protocol.remote import CommandResult, RemoteClientConnection
from tvapp.protocol.remote_messages import Authed, Command, Error, PhoneCameraStopped, RemoteProtocolError, State
from tvapp.web.tls import fingerprint as fingerprint_of

R = TypeVar("R", bound=Record)

HTTP_TIMEOUT = 10.0


class RemoteLinkError(CodedError):
    """Talking to the TV failed; ``code`` is stable (the TV's error code, or one of ours), ``message`` human."""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class Unreachable(RemoteLinkError):
    """The TV did not answer (no route, refused, timed out, TLS failed)."""

    def __init__(self, message: str) -> None:
        super().__init__("unreachable", message)


class FingerprintMismatch(RemoteLinkError):
    """The TV's certificate is not the one pinned at pairing."""

    def __init__(self, expected: str, seen: str) -> None:
        super().__init__("fingerprint_mismatch",
                         f"the TV's certificate changed (pinned {expected}, now {seen}): refusing to talk to it; "
                         "if the TV really made a new certificate, forget it and pair again")
        self.expected = expected
        self.seen = seen


class PairingError(RemoteLinkError):
    """The TV refused a pairing step; ``retry_after`` (seconds) and ``rotated`` come with some codes."""

    def __init__(self, code: str, message: str, retry_after: float | None = None, rotated: bool = False) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after
        self.rotated = rotated


# --- certificate pinning ------------------------------------------------------------------------------------------


def _normal_fingerprint(fingerprint: str) -> str:
    value = fingerprint.strip().lower()
    value = value.removeprefix("sha256:") if value.startswith("sha256:") else value
    return value.replace(":", "")


def fingerprints_equal(a: str, b: str) -> bool:
    """Return whether two fingerprints name the same certificate (case and colons do not matter)."""
    return _normal_fingerprint(a) == _normal_fingerprint(b)


def _pinning_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the pin below replaces CA verification
    return ctx


def _check_pin(ssl_object: ssl.SSLObject | ssl.SSLSocket | None, pinned: str | None) -> str:
    """Return the peer's fingerprint; raise FingerprintMismatch when a pin is given and differs."""
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        raise Unreachable("the TV sent no TLS certificate")
    seen = fingerprint_of(der)
    if pinned is not None and not fingerprints_equal(seen, pinned):
        raise FingerprintMismatch(pinned, seen)
    return seen


# --- HTTP: the pairing endpoints ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HttpAnswer:
    """One HTTP response from the TV, and the certificate fingerprint seen (None over plain http)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    fingerprint: str | None


def _base(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteLinkError("bad_url", f"not an http(s) URL: {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise RemoteLinkError("bad_url", f"bad port in {url!r}") from None
    return parts.scheme, parts.hostname, port


def _http_sync(method: str, url: str, path: str, body: dict[str, Any] | None, fingerprint: str | None,
               timeout: float) -> HttpAnswer:
    scheme, host, port = _base(url)
    conn: http.client.HTTPConnection
    if scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=_pinning_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        try:
            conn.connect()
        except (OSError, ssl.SSLError) as exc:
            raise Unreachable(f"cannot reach the TV at {url}: {exc}") from None
        seen = _check_pin(conn.sock, fingerprint) if scheme == "https" else None  # type: ignore[arg-type]
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json", "Connection": "close"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read(1_000_000)
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(f"the TV at {url} did not answer: {exc}") from None
        try:
            decoded = json.loads(raw) if raw else {}
        except ValueError:
            decoded = {}
        return HttpAnswer(response.status, decoded if isinstance(decoded, dict) else {},
                          {k.lower(): v for k, v in response.getheaders()}, seen)
    finally:
        conn.close()


async def http_json(method: str, url: str, path: str, body: dict[str, Any] | None = None,
                    fingerprint: str | None = None, timeout: float = HTTP_TIMEOUT) -> HttpAnswer:
    """Send one JSON request to the TV at ``url`` (pinning ``fingerprint`` over https) and return its answer."""
    return await asyncio.to_thread(_http_sync, method, url, path, body, fingerprint, timeout)


def _pairing_error(answer: HttpAnswer) -> PairingError:
    """Return the error for a refused pairing step (Retry-After stands in for a missing retry_after)."""
    refusal = PairingRefusal.from_body(answer.body)
    if refusal is None:
        return PairingError(f"http_{answer.status}", f"the TV answered HTTP {answer.status}",
                            retry_after=_seconds(answer.headers.get("retry-after")))
    retry_after = refusal.retry_after if refusal.retry_after is not None else _seconds(answer.headers.get("retry-after"))
    return PairingError(refusal.code, refusal.message, retry_after=None if retry_after is None else max(0.0, retry_after),
                        rotated=refusal.rotated is True)


def _seconds(header: str | None) -> float | None:
    try:
        return None if header is None else max(0.0, float(header))
    except ValueError:
        return None


def _read(answer: HttpAnswer, cls: type[R]) -> R:
    try:
        return cls.from_json(answer.body)
    except ProtocolError as exc:
        raise RemoteLinkError("bad_answer", f"the TV's answer is not what pairing expects: {exc.message}") from None


def _built(build: Callable[[], R]) -> R:
    """Return the body ``build`` makes; a value the TV would refuse is refused here the same way (bad_request)."""
    try:
        return build()
    except ProtocolError as exc:
        raise PairingError("bad_request", exc.message) from None


@dataclasses.dataclass(frozen=True)
class SeenTv:
    """What GET /v1/tv said, and the certificate fingerprint this connection showed (None over plain http)."""

    info: TvInfo
    fingerprint: str | None


async def tv_info(url: str, fingerprint: str | None = None) -> SeenTv:
    """Return the TV's GET /v1/tv answer and the certificate this connection showed."""
    answer = await http_json("GET", url, "/v1/tv", fingerprint=fingerprint)
    if answer.status != 200:
        error = _pairing_error(answer)
        raise RemoteLinkError(error.code, error.message)
    return SeenTv(_read(answer, TvInfo), answer.fingerprint)


async def request_pairing(url: str, name: str, fingerprint: str | None = None) -> PairingStarted:
    """Ask the TV to show a pairing code; return its answer (pairing_id, expires_at, code_digits)."""
    body = _built(lambda: PairingRequest(name=name))
    answer = await http_json("POST", url, "/v1/pairings", body.to_json(), fingerprint)
    if answer.status != 201:
        raise _pairing_error(answer)
    return _read(answer, PairingStarted)


async def confirm_pairing(url: str, pairing_id: str, *, code: str | None = None, secret: str | None = None,
                          name: str = "", fingerprint: str | None = None) -> Paired:
    """Prove the code (or the QR secret); return the device id, its credential and the TV's name."""
    if (code is None) == (secret is None):
        raise ValueError("give exactly one of code and secret")
    proof = _built(lambda: PairingConfirm(code=code, secret=secret, name=name or None))
    body = {name: value for name, value in proof.to_json().items() if value is not None}
    answer = await http_json("POST", url, f"/v1/pairings/{quote(pairing_id, safe='')}/confirm", body, fingerprint)
    if answer.status != 201:
        raise _pairing_error(answer)
    return _read(answer, Paired)


# --- the remote-control websocket -----------------------------------------------------------------------------------


def websocket_url(url: str) -> str:
    """Return the /v1/remote websocket URL of the TV at ``url``."""
    scheme, _, _ = _base(url)
    parts = urlsplit(url)
    return f"{'wss' if scheme == 'https' else 'ws'}://{parts.netloc}/v1/remote"


class RemoteLink:
    """One authenticated remote-control connection to a TV (an async context manager)."""

    def __init__(self, ws: ClientConnection, conn: RemoteClientConnection, authed: Authed) -> None:
        self._ws = ws
        self._conn = conn
        self.device_id: str = authed.device_id
        self.tv_name: str = authed.tv_name
        self.state: State | None = None
        self.closed_by: Error | None = None  # the TV's reason when it ended the connection
        self.phone_camera_stopped: PhoneCameraStopped | None = None  # why this phone stopped being the TV's camera
        self._waiting: dict[str, asyncio.Future[CommandResult]] = {}
        self._subscribers: list[asyncio.Queue[State | None]] = []
        self._send_lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self._done = asyncio.Event()

    @classmethod
    async def connect(cls, url: str, credential: str, fingerprint: str | None = None,
                      timeout: float = HTTP_TIMEOUT) -> RemoteLink:
        """Open /v1/remote on the TV at ``url``, check the pin, authenticate; raise RemoteLinkError on refusal."""
        uri = websocket_url(url)
        secure = uri.startswith("wss:")
        redact_frames()
        try:
            ws = await ws_connect(uri, ssl=_pinning_context() if secure else None, open_timeout=timeout,
                                  max_size=1 << 20, compression=None)
        except InvalidStatus as exc:
            raise RemoteLinkError("refused", f"the TV refused the connection (HTTP {exc.response.status_code})") \
                from None
        except (OSError, InvalidHandshake, TimeoutError, ssl.SSLError) as exc:
            raise Unreachable(f"cannot reach the TV at {url}: {exc}") from None
        try:
            if secure:
                _check_pin(ws.transport.get_extra_info("ssl_object"), fingerprint)
            conn = RemoteClientConnection(credential)
            for text in conn.data_to_send():
                await ws.send(text)
            authed = await asyncio.wait_for(cls._await_authed(ws, conn), timeout)
        except BaseException:
            await ws.close()
            raise
        link = cls(ws, conn, authed)
        link._reader = asyncio.create_task(link._read())
        return link

    @staticmethod
    async def _await_authed(ws: ClientConnection, conn: RemoteClientConnection) -> Authed:
        try:
            while True:
                text = await ws.recv()
                if not isinstance(text, str):
                    continue
                try:
                    conn.receive_text(text, time.monotonic())
                except RemoteProtocolError as exc:
                    raise RemoteLinkError("bad_message", f"the TV broke the protocol: {exc.message}") from None
                for event in conn.events_received():
                    if isinstance(event, Authed):
                        return event
                    if isinstance(event, Error):
                        raise RemoteLinkError(event.code, event.message)
        except ConnectionClosed as exc:
            raise RemoteLinkError("connection_closed",
                                  f"the TV closed the connection before accepting it ({exc.rcvd.code if exc.rcvd else 'no close frame'})") \
                from None

    async def __aenter__(self) -> RemoteLink:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        """Return whether the connection is over."""
        return self._done.is_set()

    async def command(self, command: Command, timeout: float = 10) -> CommandResult:
        """Send a command and wait for the TV's ok or error; raise TimeoutError when none comes in time."""
        if self.closed:
            raise RemoteLinkError("connection_closed", "the connection to the TV is closed")
        sent = self._conn.send(command)
        assert sent.id is not None
        future: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._waiting[sent.id] = future
        await self._flush()
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        finally:
            self._waiting.pop(sent.id, None)

    async def states(self) -> AsyncIterator[State]:
        """Yield every state the TV pushes from now on; end when the connection closes."""
        queue: asyncio.Queue[State | None] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            if self.closed:
                return
            while True:
                state = await queue.get()
                if state is None:
                    return
                yield state
        finally:
            self._subscribers.remove(queue)

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._finish()

    async def _flush(self) -> None:
        async with self._send_lock:
            for text in self._conn.data_to_send():
                try:
                    await self._ws.send(text)
                except ConnectionClosed:
                    break

    async def _read(self) -> None:
        try:
            async for text in self._ws:
                if not isinstance(text, str):
                    continue
                try:
                    self._conn.receive_text(text, time.monotonic())
                except RemoteProtocolError:
                    continue  # a malformed message changes nothing; the rest of the stream is still good
                for event in self._conn.events_received():
                    if isinstance(event, CommandResult):
                        self._resolve(event)
                    elif isinstance(event, State):
                        self.state = event
                        for queue in self._subscribers:
                            queue.put_nowait(event)
                    elif isinstance(event, PhoneCameraStopped):
                        self.phone_camera_stopped = event
                    elif isinstance(event, Error) and event.id is None:
                        self.closed_by = event  # the TV's word before it closes (device forgotten, shutting down)
        except ConnectionClosed:
            pass
        finally:
            self._finish()

    def _resolve(self, result: CommandResult) -> None:
        assert result.command.id is not None
        future = self._waiting.get(result.command.id)
        if future is not None and not future.done():
            future.set_result(result)

    def _finish(self) -> None:
        if self._done.is_set():
            return
        self._done.set()
        self._conn.close()
        for event in self._conn.events_received():
            if isinstance(event, CommandResult):
                self._resolve(event)
        for queue in self._subscribers:
            queue.put_nowait(None)
