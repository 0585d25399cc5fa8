"""A real core in the cloud reached from homes behind real NATs (tvapp.testing.homes), with real media both ways.

- An SDK participant in home A (endpoint-independent NAT) and one in home B (symmetric NAT) join one room on the
  core in the cloud; each publishes its own colour and decodes the other's. Their media goes to the SFU's public
  address from their private one (NAT in between; the SFU learns the mapped address as a peer-reflexive candidate).
- A participant in home C, where no UDP leaves, reaches the core only through coturn over TCP, with TURN REST
  credentials (username "expiry:identity", password base64(HMAC-SHA1(secret, username))): its nominated candidate is
  a relay, and coturn counts the allocation.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tvapp.testing.homes import Home, Homes
from tvapp.testing.netem import netem_available
from tvapp.testing.reach import Reach, close_to, take_part
from tvapp.testing.server import ServerProcess

pytestmark = pytest.mark.timeout(120)

RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)


@pytest.fixture
def homes() -> Iterator[Homes]:
    reason = netem_available()
    assert reason is None, f"homes cannot be built on this machine: {reason}"
    with Homes() as made:
        yield made


def cloud_core(homes: Homes, data: Path, env: dict[str, str] | None = None) -> ServerProcess:
    """A `tvapp serve` in the cloud namespace on its public address (offered as the SFU's only host candidate)."""
    return ServerProcess(data, env={"TVAPP_MEDIA_HOST_ADDRESSES": homes.core_ip, **(env or {})}, host=homes.core_ip,
                         prefix=homes.cloud_prefix)


def new_room(core: ServerProcess) -> str:
    name = "reach-" + uuid.uuid4().hex[:8]
    core.http.post("/v1/rooms", json={"name": name}).raise_for_status()
    return name


def call(pool: concurrent.futures.Executor, home: Home, url: str, token: str, **kwargs: object
         ) -> concurrent.futures.Future[Reach]:
    """Run `take_part` on `home`'s LAN in a worker thread."""
    return pool.submit(home.run_in_namespace, asyncio.run, take_part(url, token, **kwargs))  # type: ignore[arg-type]


def test_a_participant_behind_each_nat_decodes_the_others_video_through_the_public_sfu(
        homes: Homes, tmp_path: Path) -> None:
    with cloud_core(homes, tmp_path / "core") as core:
        room = new_room(core)
        done_a, done_b, hold = threading.Event(), threading.Event(), threading.Event()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            a = call(pool, homes["a"], core.url, core.token(room, "alice")["access_token"], watch="bob",
                     color=RED, done=done_a, hold=hold)
            b = call(pool, homes["b"], core.url, core.token(room, "bob")["access_token"], watch="alice",
                     color=BLUE, done=done_b, hold=hold)
            try:
                for done in (done_a, done_b):
                    while not done.wait(0.5):  # (a failure in a thread ends the wait early)
                        if a.done() or b.done():
                            [f.result() for f in (a, b) if f.done()]
            finally:
                hold.set()
            alice, bob = a.result(), b.result()
    assert close_to(alice.rgb, BLUE), alice  # alice decoded bob's video ...
    assert close_to(bob.rgb, RED), bob  # ... and bob alice's
    for reach, home in ((alice, homes["a"]), (bob, homes["b"])):
        # host candidate on the private LAN -> the SFU's public address: only the NAT joins the two
        assert reach.local_type == "host" and reach.local_addr[0] == home.lan_ip, reach
        assert reach.remote_addr[0] == homes.core_ip, reach
    print(f"alice (EIM NAT) first frame {alice.first_frame_s:.2f} s, bob (symmetric NAT) {bob.first_frame_s:.2f} s")
