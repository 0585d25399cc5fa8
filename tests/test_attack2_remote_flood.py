"""A socket flood on the TV's /v1/remote websocket: strangers cannot use up the TV, a paired phone keeps its remote.

A real `tvapp tv` (built-in core, SDL dummy) with a phone paired the way a person pairs (the code read off the
screen). Strangers then open websockets and never authenticate: from one address only MAX_UNAUTHED_PER_ADDRESS wait
at a time, and MAX_LINKS connections in all (strangers from many loopback addresses); one more gets the error
``too_many_connections`` and a close 1013 at once. Meanwhile the paired phone (its own address) still drives the
TV, and the TV still answers /v1/tv.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_tv_remote import Loop, pair, start_tv
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tvapp.client.remote_link import RemoteLink, websocket_url
from tvapp.protocol import remote_messages as rp
from tvapp.testing.tv import TvProcess
from tvapp.tv.remote.hub import MAX_LINKS, MAX_UNAUTHED_PER_ADDRESS


@pytest.fixture
def tv(tmp_path: Path) -> Iterator[TvProcess]:
    process = start_tv(tmp_path)
    try:
        yield process
    finally:
        assert process.stop() == 0, process.output


async def stranger(url: str, address: str) -> ClientConnection:
    """Open a websocket from `address` and prove the TV serves it: a broken message gets an error back."""
    ws = await connect(url, open_timeout=5, local_addr=(address, 0))
    await ws.send("not json")
    answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert answer["type"] == "error" and answer["code"] != "too_many_connections", answer
    return ws


async def refused(url: str, address: str) -> dict[str, Any]:
    """Open a websocket from `address` that the TV must refuse; return its error after checking the close."""
    async with connect(url, open_timeout=5, local_addr=(address, 0)) as ws:
        answer: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1013, ws.close_code
    return answer


def test_strangers_flooding_the_remote_socket_are_capped_and_the_paired_phone_still_works(tv: TvProcess) -> None:
    loop = Loop()
    opened: list[ClientConnection] = []
    try:
        tv.wait_for(lambda s: s["screen"] == "RoomScreen", timeout=60, what="the default room")
        paired = pair(tv, loop)
        base = tv.remote_url()
        url = websocket_url(base)

        for _ in range(MAX_UNAUTHED_PER_ADDRESS):
            opened.append(loop.run(stranger(url, "127.0.0.2")))
        answer = loop.run(refused(url, "127.0.0.2"))
        assert answer["type"] == "error" and answer["code"] == "too_many_connections" and answer["message"]

        link = loop.run(RemoteLink.connect(base, paired.credential))  # the phone, from 127.0.0.1
        assert loop.run(link.command(rp.StatusCommand())).ok

        address = 3
        while len(opened) + 1 < MAX_LINKS:  # + the phone's link
            for _ in range(min(MAX_UNAUTHED_PER_ADDRESS, MAX_LINKS - 1 - len(opened))):
                opened.append(loop.run(stranger(url, f"127.0.0.{address}")))
            address += 1
        answer = loop.run(refused(url, f"127.0.0.{address + 1}"))
        assert answer["code"] == "too_many_connections"

        assert httpx.get(base + "/v1/tv", timeout=5).status_code == 200
        assert loop.run(link.command(rp.StatusCommand())).ok  # the full TV still serves its phone
        for ws in opened:
            loop.run(ws.close())
        opened.clear()
        opened.append(loop.run(stranger(url, "127.0.0.2")))  # room again once the strangers left
        loop.run(link.close())
    finally:
        for ws in opened:
            loop.run(ws.close())
        loop.close()
