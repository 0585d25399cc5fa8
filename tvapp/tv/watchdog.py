"""Tell systemd how the TV is doing: readiness, status text and watchdog pings, as datagrams to $NOTIFY_SOCKET.

The kiosk unit (systemd/tvapp.service) is `Type=notify` with `WatchdogSec=`: systemd counts the TV as started
when it sends READY=1 and restarts it when WATCHDOG=1 pings stop. The frame loop calls `Notifier.frame(now)` once
per displayed frame, so a frozen UI stops pinging and gets restarted; a busy asyncio side does not keep a dead
screen alive.

No dependency: the protocol is one AF_UNIX datagram of newline-separated KEY=VALUE lines to the path (or, when
it starts with "@", the abstract name) in $NOTIFY_SOCKET. Outside systemd the Notifier is disabled and every
call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Send sd_notify messages to the service manager, if there is one."""

    def __init__(self, address: str | bytes | None, watchdog_interval: float | None = None) -> None:
        """Notify `address` (a socket path, or bytes starting with NUL for an abstract name; None: disabled)."""
        self._address = address
        self._socket: socket.socket | None = None
        self._last_ping: float | None = None
        self._send_failed = False
        self.watchdog_interval = watchdog_interval if address is not None else None
        if address is not None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Notifier:
        """Build a Notifier from NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (disabled when unset)."""
        address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        return cls(address, _watchdog_interval(env))

    @property
    def enabled(self) -> bool:
        """Return whether messages go anywhere."""
        return self._socket is not None

    def ready(self, status: str = "") -> None:
        """Tell systemd that start-up is finished (READY=1), with an optional status line."""
        self._send(["READY=1"] + ([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> None:
        """Set the status line `systemctl status` shows."""
        self._send([f"STATUS={_one_line(text)}"])

    def stopping(self) -> None:
        """Tell systemd that the TV is shutting down (STOPPING=1)."""
        self._send(["STOPPING=1"])

    def frame(self, now: float) -> None:
        """Ping the watchdog (WATCHDOG=1) if `watchdog_interval` seconds have passed since the last ping.

        Call once per displayed frame with a monotonic time in seconds; between pings this is a comparison.
        """
        if self.watchdog_interval is None:
            return
        if self._last_ping is not None and now - self._last_ping < self.watchdog_interval:
            return
        self._last_ping = now
        self._send(["WATCHDOG=1"], wait=False)

    def close(self) -> None:
        """Close the socket; later calls are no-ops."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self.watchdog_interval = None

    def _send(self, lines: list[str], wait: bool = True) -> None:
        if self._socket is None or self._address is None:
            return
        data = "\n".join(lines).encode("utf-8", "replace")
        try:
            # The frame loop must never block on the service manager: a full queue drops that one ping.
            self._socket.sendto(data, 0 if wait else socket.MSG_DONTWAIT, self._address)
        except OSError as exc:
            if not self._send_failed:
                log.warning("cannot notify systemd at %r: %s", self._address, exc)
                self._send_failed = True
        else:
            self._send_failed = False


def _socket_address(value: str) -> str | bytes | None:
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    if value:
        log.warning("NOTIFY_SOCKET=%r is neither a path nor an abstract name: not notifying systemd", value)
    return None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None  # the watchdog is meant for another process (we were started by the one it watches)
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    # Half the timeout, as sd_watchdog_enabled(3) advises: one late frame does not cost a restart.
    return usec / 2 / 1e6 if usec > 0 else None


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())
