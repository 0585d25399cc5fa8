"""Outgoing HTTP with a wall-clock bound: what the core and the screens fetch from URLs others name.

`opener(deadline)` is a urllib opener that speaks http(s) only (no ftp://, file:// or data: handlers, so neither a
URL nor a redirect reaches them) and opens every socket through `deadline`; `Deadline(seconds)` shuts those sockets
down once the seconds have passed, so a far end dripping bytes (a status line, headers or a body a byte at a time,
each within the socket timeout) cannot hold a thread for longer. `Deadline(seconds, allow_private=False)` also
refuses to connect to a loopback, private, link-local or otherwise non-global address (`PrivateAddress`), checked
on the addresses the name resolves to, the very ones then connected to (no second lookup to rebind). Used by tvapp.web.hls (live playlists and
segments) and tvapp.server.webhooks.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import threading
import urllib.request
from typing import Any


class PrivateAddress(OSError):
    """The URL's host is (or resolves to) an address that is not global, and private addresses are not allowed."""


def _is_global(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class Deadline:
    """Shut down every socket a fetch opened once `seconds` have passed (a far end dripping bytes never holds it)."""

    def __init__(self, seconds: float | None, *, allow_private: bool = True) -> None:
        self.allow_private = allow_private
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        if seconds is not None:
            self._timer = threading.Timer(max(0.0, seconds), self._expire)
            self._timer.daemon = True
            self._timer.start()

    def connection(self, *args: Any, **kwargs: Any) -> socket.socket:
        """Open a connection as socket.create_connection does, shut down at the deadline."""
        sock = socket.create_connection(*args, **kwargs) if self.allow_private else self._global(*args, **kwargs)
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                self._shut(sock)
        return sock

    @staticmethod
    def _global(address: tuple[str, int], timeout: float | None = None, source_address: Any = None,
                **_: Any) -> socket.socket:
        """Connect to `address` only if every address its host resolves to is global (raise PrivateAddress)."""
        infos = socket.getaddrinfo(address[0], address[1], type=socket.SOCK_STREAM)
        if not infos or not all(_is_global(str(info[4][0])) for info in infos):
            raise PrivateAddress("the address is loopback, private or local, which this server does not fetch")
        family, kind, proto, _canonical, sockaddr = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            if source_address is not None:
                sock.bind(source_address)
            sock.connect(sockaddr)
        except BaseException:
            sock.close()
            raise
        return sock

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                self._shut(sock)

    def cancel(self) -> None:
        """Stop the timer (the fetch is over)."""
        if self._timer is not None:
            self._timer.cancel()


def opener(deadline: Deadline, *, proxy: str = "",
           redirects: urllib.request.HTTPRedirectHandler | None = None) -> urllib.request.OpenerDirector:
    """Return an opener that speaks http(s) only (no ftp, file or data handlers), its sockets under `deadline`,
    through `proxy` when given (else none, whatever the environment says), following redirects with `redirects`
    (None: a redirect is answered as the HTTPError of its status)."""

    class Plain(http.client.HTTPConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = deadline.connection

    class Tls(http.client.HTTPSConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = deadline.connection

    class PlainHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Plain, req)

    class TlsHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Tls, req, context=self._context)  # type: ignore[attr-defined]

    made = urllib.request.OpenerDirector()
    proxies = {"http": proxy, "https": proxy} if proxy else {}
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler(proxies), PlainHandler(), TlsHandler(), urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor()]
    for handler in handlers + ([] if redirects is None else [redirects]):
        made.add_handler(handler)
    return made


__all__ = ["Deadline", "PrivateAddress", "opener"]
