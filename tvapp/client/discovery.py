"""Find TVs on the LAN: browse `_tvapp._tcp.local.` with python-zeroconf (what a phone does first).

`discover(timeout)` listens for `timeout` seconds and returns every TV that answered, with what its TXT
record says (friendly name, state, whether pairing is open) and where to reach it. Blocking: it runs
zeroconf's own threads; call it from a thread when inside asyncio.

Every question asks for a multicast answer (QM). zeroconf's default first question asks for a unicast one
(QU, RFC 6762 5.4), and a unicast answer to port 5353 reaches only one of the sockets bound to it: with the
TV and the phone on the same host, or any two mDNS stacks on one machine, it is often not ours, and the TV is
then only seen after the second question a second later (bench/tv_remote.py measures both).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from zeroconf import DNSQuestionType, InterfaceChoice, IPVersion, ServiceBrowser, ServiceListener, Zeroconf

from tvapp.protocol.discovery import SERVICE_TYPE, read_txt


@dataclass(frozen=True)
class FoundTv:
    """One TV that answered."""

    service: str                  # the zeroconf instance name, e.g. "Den TV._tvapp._tcp.local."
    friendly_name: str
    instance_id: str
    state: str
    pairing_open: bool
    addresses: tuple[str, ...]
    port: int
    txt: dict[str, str] = field(default_factory=dict)
    found_after: float = 0.0      # seconds from the start of discovery

    @property
    def url(self) -> str:
        """Return the http URL of the TV's first address."""
        return f"http://{self.addresses[0]}:{self.port}" if self.addresses else ""


class _Listener(ServiceListener):
    def __init__(self, started: float, question_type: DNSQuestionType | None) -> None:
        self.started = started
        self.question_type = question_type
        self.found: dict[str, FoundTv] = {}
        self.lock = threading.Lock()

    def _resolve(self, zc: Zeroconf, type_: str, name: str) -> None:
        info = zc.get_service_info(type_, name, timeout=1500, question_type=self.question_type)
        if info is None:
            return
        said = read_txt(info.properties, name)
        tv = FoundTv(service=name, friendly_name=said.friendly_name, instance_id=said.instance_id, state=said.state,
                     pairing_open=said.pairing_open, addresses=tuple(info.parsed_addresses(IPVersion.V4Only)),
                     port=info.port or 0, txt=said.txt, found_after=time.monotonic() - self.started)
        with self.lock:
            previous = self.found.get(name)
            self.found[name] = tv if previous is None else FoundTv(**{**tv.__dict__,
                                                                       "found_after": previous.found_after})

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self._resolve(zc, type_, name)

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self._resolve(zc, type_, name)

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        with self.lock:
            self.found.pop(name, None)


def discover(timeout: float = 2.0, interfaces: Sequence[str] = (), *, multicast_answers: bool = True) -> list[FoundTv]:
    """Return the TVs seen within `timeout` seconds (sorted by friendly name).

    `multicast_answers=False` keeps zeroconf's default questions (the benchmark's baseline).
    """
    started = time.monotonic()
    zc = Zeroconf(interfaces=list(interfaces) or InterfaceChoice.All, ip_version=IPVersion.V4Only)
    question_type = DNSQuestionType.QM if multicast_answers else None
    listener = _Listener(started, question_type)
    try:
        browser = ServiceBrowser(zc, SERVICE_TYPE, listener, question_type=question_type)
        time.sleep(max(0.0, timeout - (time.monotonic() - started)))
        browser.cancel()
    finally:
        zc.close()
    with listener.lock:
        return sorted(listener.found.values(), key=lambda tv: (tv.friendly_name, tv.service))
