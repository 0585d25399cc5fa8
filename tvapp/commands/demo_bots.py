"""`tvapp demo`'s guests (tvapp.commands.demo): a few bots publishing coloured patterns and tones, taking turns to talk.

Each bot is a real `tvapp bot` process (so they encode on the other cores), given an access token issued
through the REST API with the TV's API key. They talk in turns on the wall clock (`--talk i/N`), so the
active-speaker highlight moves from tile to tile.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from tvapp.client.rest import RestClient
from tvapp.tv.session import TvSession

# (name, colour, tone Hz): distinct colours and tones, far apart enough to tell apart by ear and by FFT.
GUESTS = (("Ada", "red", 330), ("Grace", "green", 440), ("Alan", "blue", 554), ("Edsger", "yellow", 659),
          ("Barbara", "magenta", 784))
TURN_SECONDS = 3.0
BOT_VIDEO = "pattern:640x480@15"


async def run_bots(session: TvSession, server: str, api_key: tuple[str, str], room: str, count: int,
                   phone_url: str = "") -> None:
    """Start `count` bots in `room` once the TV is in it; stop them when cancelled."""
    while session.room is None:
        await asyncio.sleep(0.1)
    code = session.invite_code
    link = f"{phone_url}?code={code}" if phone_url and code else phone_url
    print(f"tvapp demo: room {room!r}, invite code {code}; join from a phone at {link}", flush=True)
    procs: list[asyncio.subprocess.Process] = []
    try:
        for index, (name, color, hz) in enumerate(GUESTS[:count]):
            pair = await RestClient(server, api_key=api_key).issue_token(room, f"demo-{name.lower()}", name=name)
            procs.append(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tvapp", "bot", "--server", server, "--token", pair.access_token,
                "--refresh-token", pair.refresh_token, "--video", BOT_VIDEO, "--color", color,
                "--audio", f"tone:{hz}", "--talk", f"{index}/{count}@{TURN_SECONDS:g}",
                stdout=asyncio.subprocess.DEVNULL))
        print(f"tvapp demo: {count} bots joined; they take turns talking every {TURN_SECONDS:g} s. "
              "Ctrl-C stops the demo.", flush=True)
        await asyncio.gather(*(proc.wait() for proc in procs))
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in procs:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 5)
