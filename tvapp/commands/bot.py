"""`tvapp bot`: a headless participant that publishes a test pattern, a tone or a media file (demos, load tests).

It joins with an access token or an invite code, publishes its sources, and prints every room event as one
JSON object per line on stdout (``{"event": "participant_joined", "t": ..., ...}``). SIGINT or SIGTERM make it
leave the room and exit 0. Failures print one line on stderr, never a traceback: exit 1 for a refused join,
a bad invite or an unreachable server, 2 for bad arguments.

Only argparse and the standard library are imported at module level: `tvapp --help` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiortc import MediaStreamTrack

    from tvapp.commands.common import Subcommands

    from tvapp.client.events import RoomEvent
    from tvapp.client.room import Room

CLEAN_ENDS = frozenset({"client_initiated", "removed", "room_completed"})


class BotError(Exception):
    """A failure to report on one line; ``status`` is the exit code."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def add_parser(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add `tvapp bot` and its options to the subcommands `sub` (it takes no --config/--data)."""
    bot = sub.add_parser("bot", help="join a room as a headless participant publishing a pattern/tone/file",
                         description="Join a room and publish a test pattern, a tone or a media file; print room "
                                     "events as JSON lines on stdout. SIGINT/SIGTERM leave the room.")
    add_arguments(bot)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `tvapp bot` options to `parser`."""
    parser.add_argument("--server", required=True, metavar="URL", help="core server, e.g. http://127.0.0.1:8800")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--token", metavar="T", help="access token (from 'tvapp token' or POST /v1/tokens)")
    who.add_argument("--invite", metavar="CODE", help="invite code to redeem for a guest token")
    parser.add_argument("--refresh-token", metavar="R", help="refresh token that comes with --token")
    parser.add_argument("--identity", help="identity when redeeming an invite (default: bot-<random>)")
    parser.add_argument("--name", default="", help="display name when redeeming an invite")
    parser.add_argument("--room", metavar="R", help="refuse to join unless the token or invite is for room R")
    parser.add_argument("--video", default="pattern", metavar="SPEC",
                        help="pattern | pattern:WxH@FPS | camera[:DEVICE] | none | FILE (default: pattern)")
    parser.add_argument("--audio", default="tone:440", metavar="SPEC",
                        help="tone:HZ | mic[:DEVICE] | none | FILE (default: tone:440)")
    parser.add_argument("--color", metavar="COLOR",
                        help="paint the pattern one colour instead of colour bars: #RRGGBB or red, green, blue, ...")
    parser.add_argument("--talk", metavar="SLOT/SLOTS[@S]",
                        help="play the tone only in turn SLOT of SLOTS turns of S seconds (default 4) on the wall "
                             "clock, so several bots take turns speaking, e.g. --talk 0/3, --talk 1/3, --talk 2/3")
    parser.add_argument("--mute", action="append", choices=["audio", "video"], default=[],
                        help="publish this track muted (repeatable)")
    parser.add_argument("--simulcast", action="store_true",
                        help="also publish a 160x90@15 rendition of the video, sent to subscribers whose link cannot "
                             "carry the full one (paused until one needs it)")
    parser.add_argument("--subscribe", action="store_true",
                        help="receive the others' media too (default: publish only, nothing is decoded)")
    parser.add_argument("--duration", type=float, metavar="S", help="leave after S seconds (default: run until stopped)")
    parser.add_argument("--watch", metavar="TRACE.jsonl",
                        help="play the room's shared content (video only) and append, 60 times a second while "
                             "content is loaded, the frame it would show: {\"t\", \"server\", \"pts\", \"target\"}")


def main(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    """Run the bot described by parsed `args`; return the exit status."""
    out = out or sys.stdout
    try:
        factories = _sources(args)
        return asyncio.run(run_bot(args, factories, out))
    except BotError as exc:
        print(f"tvapp bot: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 0


def _sources(args: argparse.Namespace) -> list[tuple[str, Callable[[], MediaStreamTrack]]]:
    from tvapp.client.sources import SourceError, parse_audio_spec, parse_color, parse_video_spec

    if args.duration is not None and not args.duration > 0:
        raise BotError("--duration must be greater than 0", 2)
    watch = getattr(args, "watch", None)
    if watch is not None and not os.path.isdir(os.path.dirname(os.path.abspath(watch)) or "."):
        raise BotError(f"--watch {watch}: no such folder for the trace", 2)
    try:
        color = parse_color(args.color) if args.color else None
        video, audio = parse_video_spec(args.video, color), parse_audio_spec(args.audio)
        args.turns = parse_turns(args.talk) if args.talk else None
    except SourceError as exc:
        raise BotError(str(exc), 2) from None
    return [(source, factory) for source, factory in (("camera", video), ("microphone", audio)) if factory]


async def run_bot(args: argparse.Namespace, factories: list[tuple[str, Callable[[], MediaStreamTrack]]],
                  out: IO[str]) -> int:
    """Join, publish, print events until stopped; return the exit status."""
    from tvapp.client.room import Room

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    def emit(obj: dict[str, Any]) -> None:
        out.write(json.dumps({**obj, "t": round(time.time(), 3)}) + "\n")
        out.flush()

    token, refresh = await _credentials(args)
    joining = asyncio.ensure_future(_connect(Room, args, token, refresh))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait((joining, stopping), return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not joining.done():
        joining.cancel()
        return 0
    room = joining.result()
    ended = asyncio.Event()
    room.on("disconnected", lambda event: ended.set())
    room.on(_all_events(), lambda event: emit(event_json(event)))
    me = room.local_participant
    emit({"event": "connected", "room": room.name, "room_sid": room.sid, "participant_sid": me.sid,
          "identity": me.identity, "participants": [p.identity for p in room.participants.values()]})
    tracks: list[MediaStreamTrack] = []
    stop_watching = None
    try:
        if getattr(args, "watch", None):
            stop_watching = start_watch(room, args.watch)
        for source, factory in factories:
            track = factory()
            turns = getattr(args, "turns", None)
            if turns is not None and hasattr(track, "gate"):  # the tone plays in this bot's turns only
                track.gate = lambda now, turns=turns: speaking_turn(turns, now)
            tracks.append(track)
            simulcast = bool(getattr(args, "simulcast", False)) and track.kind == "video"
            pub = await me.publish_track(track, source=source, simulcast=simulcast)  # type: ignore[arg-type]
            if pub.kind in args.mute:
                await pub.mute()
            emit({"event": "local_track_published", "track_sid": pub.sid, "kind": pub.kind, "source": pub.source,
                  "muted": pub.muted, "rendition": None if pub.low is None else pub.low.sid})
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(ended.wait())]

        if args.duration is not None:
            waits.append(asyncio.ensure_future(asyncio.sleep(args.duration)))
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waits:
            waiter.cancel()
    except Exception as exc:  # a refused publish or a broken source: leave cleanly, say why
        print(f"tvapp bot: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if stop_watching is not None:
            stop_watching()
        await room.disconnect()
        for track in tracks:
            track.stop()
    return 0 if room.disconnect_reason in CLEAN_ENDS else 1


def start_watch(room: Room, path: str) -> Callable[[], None]:
    """Play `room`'s content with a ContentPlayer (video only) and trace the frame due every 1/60 s to `path`;
    return a function that stops it. Call on the room's event loop."""
    import threading

    from tvapp.client.player import ContentPlayer, attach, media_opener

    trace = open(path, "a", buffering=1, encoding="utf-8")  # line-buffered: a reader sees whole rows at once
    from tvapp.config import load

    proxy = load().watch.content_proxy  # a live stream's CDN edge or proxy ([watch] content_proxy)
    player = ContentPlayer(server_now=room.clock.now, audio=False, open_media=media_opener(room.url),
                           content_proxy=proxy)
    detach = attach(room, player)
    stop = threading.Event()

    def run() -> None:
        due = time.monotonic()
        while not stop.is_set():
            server, state = room.clock.now(), room.playback
            if server is not None and state is not None and state.content:
                shown = player.video_frame(server)
                now = time.time()
                # truth: the timeline by this machine's clock (the server's, when both run on one machine).
                trace.write(json.dumps({"t": now, "server": server, "pts": shown[1] if shown else None,
                                        "target": state.position_at(server), "truth": state.position_at(now),
                                        "seq": state.seq}) + "\n")
            due += 1 / 60
            if due < time.monotonic() - 0.1:  # fell far behind (a pause of the process): no burst of rows
                due = time.monotonic()
            stop.wait(max(0.0, due - time.monotonic()))

    tracer = threading.Thread(target=run, name="watch trace", daemon=True)
    tracer.start()

    def finish() -> None:
        stop.set()
        tracer.join(timeout=2.0)
        detach()
        player.close()
        trace.close()

    return finish


def parse_turns(text: str) -> tuple[int, int, float]:
    """Parse --talk "SLOT/SLOTS[@SECONDS]" into (slot, slots, seconds)."""
    from tvapp.client.sources import SourceError

    turn, _, length = text.partition("@")
    try:
        slot, slots = (int(part) for part in turn.split("/"))
        seconds = float(length) if length else 4.0
    except ValueError:
        raise SourceError(f"--talk {text!r}: expected SLOT/SLOTS[@SECONDS], e.g. 0/3 or 1/3@2.5") from None
    if not (slots >= 1 and 0 <= slot < slots and 0.1 <= seconds <= 3600):
        raise SourceError(f"--talk {text!r}: need 0 <= SLOT < SLOTS and 0.1 <= SECONDS <= 3600")
    return slot, slots, seconds


def speaking_turn(turns: tuple[int, int, float], now: float) -> bool:
    """Return whether `now` (wall-clock seconds) falls in this bot's turn."""
    slot, slots, seconds = turns
    return int(now // seconds) % slots == slot


def _all_events() -> type[RoomEvent]:
    from tvapp.client.events import RoomEvent

    return RoomEvent


async def _credentials(args: argparse.Namespace) -> tuple[str, str | None]:
    from tvapp.client.rest import ApiError, RestClient
    from tvapp.client.tokens import token_times

    if args.token:
        if token_times(args.token) is None:
            raise BotError("--token is not an access token (expected a JWT)", 2)
        room = _token_room(args.token)
        if args.room and room is not None and room != args.room:
            raise BotError(f"the token is for room {room!r}, not {args.room!r}", 2)
        return args.token, args.refresh_token
    identity = args.identity or "bot-" + secrets.token_hex(4)
    code = args.invite.strip().replace("/", "")
    try:
        pair = await RestClient(args.server).redeem_invite(code, identity, name=args.name)
    except ApiError as exc:
        raise BotError(f"invite refused: {exc.message or exc.code} ({exc.code})") from None
    except (OSError, ValueError) as exc:
        raise BotError(f"cannot reach the server at {args.server}: {_reason(exc)}") from None
    if args.room and pair.room != args.room:
        raise BotError(f"the invite is for room {pair.room!r}, not {args.room!r}", 2)
    return pair.access_token, pair.refresh_token


async def _connect(room_cls: type[Room], args: argparse.Namespace, token: str, refresh: str | None) -> Room:
    from websockets.exceptions import InvalidURI, WebSocketException

    from tvapp.client.signaling import JoinError

    try:
        return await room_cls.connect(args.server, token, refresh_token=refresh, auto_subscribe=args.subscribe)
    except JoinError as exc:
        raise BotError(f"cannot join: {exc.message} ({exc.code})") from None
    except InvalidURI:
        raise BotError(f"--server {args.server!r} is not an http(s) URL", 2) from None
    except (OSError, TimeoutError, WebSocketException) as exc:
        raise BotError(f"cannot reach the server at {args.server}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    text = str(reason if reason is not None else exc) or type(exc).__name__
    return text


def _token_room(token: str) -> str | None:
    import base64

    with contextlib.suppress(IndexError, ValueError, KeyError, TypeError):
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        grants = claims.get("grants") or claims.get("video") or {}
        room = grants.get("room") if isinstance(grants, dict) else None
        return room if isinstance(room, str) else None
    return None


def event_json(event: RoomEvent) -> dict[str, Any]:
    """Return the JSON line for one room event: {"event": NAME, ...its fields as plain values}."""
    from tvapp.client import events as ev

    obj: dict[str, Any] = {"event": event.NAME}
    if isinstance(event, (ev.ParticipantJoined, ev.ParticipantLeft)):
        p = event.participant
        obj.update(participant_sid=p.sid, identity=p.identity, name=p.name)
        if isinstance(event, ev.ParticipantLeft):
            obj["reason"] = event.reason
    elif isinstance(event, (ev.TrackPublished, ev.TrackUnpublished)):
        obj.update(participant_sid=event.participant.sid, identity=event.participant.identity,
                   track_sid=event.track.sid, kind=event.track.kind, source=event.track.source,
                   name=event.track.name, muted=event.track.muted)
    elif isinstance(event, (ev.TrackSubscribed, ev.TrackUnsubscribed)):
        obj.update(participant_sid=event.participant.sid, identity=event.participant.identity,
                   track_sid=event.track.sid, kind=event.track.kind)
    elif isinstance(event, (ev.TrackMuted, ev.TrackUnmuted)):
        obj.update(participant_sid=event.participant.sid, identity=event.participant.identity,
                   track_sid=event.track.sid, kind=event.track.kind, by_server=event.by_server)
    elif isinstance(event, ev.ActiveSpeakersChanged):
        obj["speakers"] = [{"participant_sid": s.participant_sid, "identity": s.identity, "level": s.level}
                           for s in event.speakers]
        obj["dominant_sid"] = event.dominant.sid if event.dominant is not None else None
    elif isinstance(event, ev.DataReceived):
        obj.update(payload=event.payload, topic=event.topic, identity=event.identity)
    elif isinstance(event, ev.Connected):
        obj.update(room=event.room_name, room_sid=event.room_sid, participant_sid=event.participant.sid)
    elif isinstance(event, ev.Disconnected):
        obj["reason"] = event.reason
    elif isinstance(event, (ev.Reconnecting, ev.Reconnected)):
        obj["reason"] = event.reason
        if isinstance(event, ev.Reconnected):
            obj["resumed"] = event.resumed
    elif isinstance(event, (ev.ParticipantReconnecting, ev.ParticipantReconnected)):
        obj.update(participant_sid=event.participant.sid, identity=event.participant.identity)
        if isinstance(event, ev.ParticipantReconnecting):
            obj["cause"] = event.cause
    elif isinstance(event, ev.NetworkQualityChanged):
        obj.update(participant_sid=event.participant.sid, identity=event.participant.identity, level=event.level,
                   previous=event.previous,
                   uplink=event.uplink.to_json() if event.uplink is not None else None,
                   downlink=event.downlink.to_json() if event.downlink is not None else None)
    elif isinstance(event, (ev.TrackSwitchedOff, ev.TrackSwitchedOn)):
        obj.update(participant_sid=event.participant.sid, identity=event.participant.identity,
                   track_sid=event.track.sid)
        if isinstance(event, ev.TrackSwitchedOff):
            obj["reason"] = event.reason
    elif isinstance(event, ev.UnmuteRequested):
        obj["track_sid"] = event.track.sid
    elif isinstance(event, ev.PlaybackChanged):
        obj.update(dataclasses.asdict(event.state))
    elif isinstance(event, ev.Error):
        obj.update(code=event.code, message=event.message)
    return obj
