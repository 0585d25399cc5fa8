"""A Room's watch over its own links: is the signaling websocket silent, is the media path dead, is it back?

The Room reads, four times a second, when the server last said anything (it answers the clock pings the Room
sends every second, so silence means a dead link, not a quiet one) and how many datagrams its peer connection
has received (tvapp.rtc.internals.packets_received: RTP, RTCP and DTLS alike; the SFU sends RTCP reports on every
m-line that carries anything, so a path that carries media is never silent for long). The rules are
tvapp.core.reconnect's; this module only feeds them and names the verdict:

- SIGNAL_DEAD: nothing from the server for `SIGNAL_SILENCE_S`: drop the websocket and resume.
- MEDIA_DEAD: no packet for MEDIA_SILENCE_S while something should arrive, or ICE/DTLS failed (aiortc's
  connectionState "failed", which its consent checks also reach): negotiate a fresh peer connection (at most once
  per MIN_MEDIA_RESTART_INTERVAL_S, and not again while the fresh one is still coming up).
- MEDIA_BACK: packets arrive again after MEDIA_DEAD.
- ADDRESS_LOST: the local address the websocket or the media path is bound to is gone from the host (an address
  change: Wi-Fi to cellular, a new DHCP lease): resume the signaling and make a fresh peer connection now, without
  waiting for either to fall silent (tvapp.core.reconnect.address_lost; `still_local` asks the kernel).
"""

from __future__ import annotations

import enum
import errno
import socket
from collections.abc import Iterable
from typing import Any

from tvapp.core.reconnect import (
    MEDIA_SILENCE_S,
    MIN_MEDIA_RESTART_INTERVAL_S,
    PacketWatch,
    address_lost,
    may_restart_media,
)
from tvapp.rtc import internals

SIGNAL_SILENCE_S = 3.0
"""Seconds without any message from the server (while the Room pings every second) before the link counts as dead."""
RESTART_PATIENCE_S = 6.0
"""Seconds a fresh peer connection gets to carry packets before another restart is tried."""
WATCH_INTERVAL_S = 0.25


class Verdict(enum.Enum):
    """What the Room should do about its links now."""

    NOTHING = "nothing"
    SIGNAL_DEAD = "signal_dead"
    MEDIA_DEAD = "media_dead"
    MEDIA_BACK = "media_back"
    ADDRESS_LOST = "address_lost"


def still_local(address: str) -> bool:
    """Tell whether this host (the calling thread's network namespace) still has the address `address`."""
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError as exc:
            return exc.errno != errno.EADDRNOTAVAIL
    return True


class LinkWatch:
    """Judges one Room's links from what it observes; `restarted()` after each fresh peer connection."""

    def __init__(self, silence: float = MEDIA_SILENCE_S) -> None:
        self.silence = silence
        self.media = PacketWatch(silence=silence)
        self.last_restart: float | None = None
        self.restarting = False  # a fresh peer connection is coming up: no packet yet

    def restarted(self, now: float) -> None:
        """Note that a fresh peer connection was made at `now` (its first packet will be MEDIA_BACK)."""
        self.last_restart = now
        self.restarting = True
        self.media = PacketWatch(silence=self.silence, dead=True)

    def check_signal(self, last_received: float, now: float) -> Verdict:
        """Return SIGNAL_DEAD when the server has been silent for SIGNAL_SILENCE_S, else NOTHING."""
        return Verdict.SIGNAL_DEAD if now - last_received >= SIGNAL_SILENCE_S else Verdict.NOTHING

    def check_media(self, pc: Any, expecting: bool, now: float) -> Verdict:
        """Return MEDIA_DEAD, MEDIA_BACK or NOTHING for the peer connection `pc` at `now`."""
        verdict = self.media.observe(internals.packets_received(pc), now, expecting=expecting)
        if verdict is False:
            self.restarting = False
            return Verdict.MEDIA_BACK
        failed = pc.connectionState == "failed"
        if self.restarting:
            stuck = self.last_restart is not None and now - self.last_restart >= RESTART_PATIENCE_S
            return Verdict.MEDIA_DEAD if stuck or failed else Verdict.NOTHING
        if (verdict is True or failed) and may_restart_media(self.last_restart, now, MIN_MEDIA_RESTART_INTERVAL_S):
            return Verdict.MEDIA_DEAD
        return Verdict.NOTHING

    def check_addresses(self, in_use: Iterable[str | None]) -> Verdict:
        """Return ADDRESS_LOST when an address in `in_use` (what the links are bound to) is gone, else NOTHING."""
        return Verdict.NOTHING if address_lost(in_use, still_local) is None else Verdict.ADDRESS_LOST
