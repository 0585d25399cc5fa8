"""Tell the LAN the TV is here: a `_tvapp._tcp.local.` service registered with python-zeroconf.

The TXT record (tvapp.protocol.discovery) carries only what a phone needs to list TVs and nothing secret or
personal: no room names, no participant names, no MAC address. The record is updated when the state changes, and goodbyes are sent on exit so phones drop
the TV at once.

Runs on the TV's asyncio thread (`advertise(session, ...)` is one task of the network side).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
from collections.abc import Callable, Sequence

from zeroconf import InterfaceChoice, IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from tvapp.protocol.discovery import SERVICE_TYPE, service_label, txt_record

log = logging.getLogger(__name__)

STATE_POLL = 0.25


class Advertiser:
    """The TV's zeroconf registration: `await start()`, `await update(...)` on changes, `await stop()`."""

    def __init__(self, friendly_name: str, port: int, addresses: Sequence[str], *,
                 interfaces: Sequence[str] = (), instance_id: str | None = None) -> None:
        self.friendly_name = friendly_name
        self.port = port
        self.addresses = list(addresses)
        self.interfaces = list(interfaces)
        self.instance_id = instance_id or secrets.token_hex(8)
        self.state = "idle"
        self.pairing_open = False
        self._zc: AsyncZeroconf | None = None
        self._info: AsyncServiceInfo | None = None

    @property
    def name(self) -> str:
        """Return the registered service instance name (zeroconf may add " (2)" on a clash)."""
        return self._info.name if self._info is not None else ""

    def _service_info(self, name: str | None = None) -> AsyncServiceInfo:
        return AsyncServiceInfo(
            SERVICE_TYPE, name or f"{service_label(self.friendly_name)}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(a) for a in self.addresses], port=self.port,
            properties=txt_record(self.instance_id, self.friendly_name, self.state, self.pairing_open),
            server=f"tvapp-{self.instance_id}.local.")

    async def start(self) -> None:
        """Register the service (waits until the probe is over)."""
        interfaces = self.interfaces or InterfaceChoice.All
        self._zc = AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
        self._info = self._service_info()
        await (await self._zc.async_register_service(self._info, allow_name_change=True))

    async def update(self, state: str, pairing_open: bool) -> None:
        """Publish a new state / pairing bit (no-op when nothing changed)."""
        if (state, pairing_open) == (self.state, self.pairing_open) or self._zc is None or self._info is None:
            self.state, self.pairing_open = state, pairing_open
            return
        self.state, self.pairing_open = state, pairing_open
        self._info = self._service_info(self._info.name)
        await (await self._zc.async_update_service(self._info))

    async def stop(self) -> None:
        """Send goodbyes and close the sockets."""
        zc, info, self._zc = self._zc, self._info, None
        if zc is None:
            return
        with contextlib.suppress(Exception):
            if info is not None:
                await (await zc.async_unregister_service(info))
        await zc.async_close()


async def advertise(advertiser: Advertiser, state: Callable[[], tuple[str, bool]]) -> None:
    """Keep `advertiser` registered, following `state()` -> (state, pairing open), until cancelled."""
    try:
        await advertiser.start()
    except Exception as exc:  # e.g. no multicast-capable interface: the TV still works, phones must type
        log.warning("tv: cannot advertise on the LAN (zeroconf): %s", exc)
        return
    log.info("tv: advertised as %r (%s)", advertiser.name, SERVICE_TYPE)
    try:
        while True:
            now_state, pairing_open = state()
            await advertiser.update(now_state, pairing_open)
            await asyncio.sleep(STATE_POLL)
    finally:
        await advertiser.stop()
