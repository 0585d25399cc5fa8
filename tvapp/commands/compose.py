"""`tvapp compose`: render a room session's recordings into one video file, with a progress bar on stderr.

Two ways, one result:
- locally (default): read the recordings of DATA (`--data`, as `tvapp serve` uses) and render in this process;
- `--server URL`: ask that core to compose (POST /v1/compositions), follow its progress, download the file.
  The API key comes from $TVAPP_API_KEY ("KEY_ID:SECRET"), else the newest active key of the local data dir.
The progress bar (percent and ETA) goes to stderr; the output path is printed on stdout when done.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from tvapp import config as config_mod
from tvapp.commands.common import run_configured

if TYPE_CHECKING:
    from tvapp.commands.common import Subcommands

BAR = 30
POLL = 0.25

EXAMPLES = """examples:
  tvapp compose RM_abc123 -o evening.mp4                       grid of every participant, 640x360 MP4
  tvapp compose RM_abc123 --layout speaker --format webm -o call.webm
  tvapp compose RM_abc123 --video-sources alice,bob --trim 60:120 -o bit.mp4
  TVAPP_API_KEY=ID:SECRET tvapp compose RM_abc123 --server https://tv.example -o call.mp4

The session sid (RM_...) is the room session's: GET /v1/rooms/{room}/sessions or the recordings' "session".
"""


def add_parser(sub: Subcommands, common: argparse.ArgumentParser) -> None:
    """Add `tvapp compose` and its options to the subcommands `sub`."""
    p = sub.add_parser("compose", parents=[common], help="render a room session's recordings into one video file",
                       description="Render a room session's recordings into one video: tiles laid out as on the "
                                   "TV (grid, speaker or single), audio mixed at each track's offset, gaps "
                                   "black and silent. Locally from --data, or on a core with --server.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("session", help="the room session's sid (RM_...)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the video")
    p.add_argument("--layout", default="grid", choices=("grid", "speaker", "single"),
                   help="grid: everyone; speaker: the active speaker large (from the audio levels); single: the "
                        "active speaker only (default: grid)")
    p.add_argument("--resolution", default="640x360", metavar="WxH", help="output size (default: 640x360)")
    p.add_argument("--format", default=None, choices=("mp4", "webm"),
                   help="mp4 (H.264 + AAC) or webm (VP8 + Opus) (default: from the output's extension, else mp4)")
    p.add_argument("--fps", type=int, default=15, help="output frame rate: 10, 15, 25 or 30 (default: 15)")
    p.add_argument("--audio-sources", metavar="LIST", help="comma-separated identities or track sids (default: all)")
    p.add_argument("--video-sources", metavar="LIST", help="comma-separated identities or track sids (default: all)")
    p.add_argument("--trim", metavar="START:END", help="seconds of the session to keep, e.g. 60:120 or 30: ")
    p.add_argument("--server", metavar="URL", help="compose on this core (REST API) instead of locally")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    """Run `tvapp compose`; return its exit status."""
    return run_configured(args, cmd_compose)


def bar(percent: float, eta: float | None) -> str:
    """Return one progress-bar line: [#####.....]  42.0%  ETA 3s."""
    filled = round(BAR * min(100.0, max(0.0, percent)) / 100)
    left = "ETA --" if eta is None else f"ETA {eta:.0f}s"
    return f"[{'#' * filled}{'.' * (BAR - filled)}] {percent:5.1f}%  {left}"


def _show(out: TextIO, percent: float, eta: float | None, quiet: bool) -> None:
    if not quiet:
        out.write("\r" + bar(percent, eta))
        out.flush()


def request_body(args: argparse.Namespace) -> dict[str, Any]:
    """Return the composition request the options describe (validated by tvapp.core.compositions later)."""
    fmt = args.format or ("webm" if str(args.output).lower().endswith(".webm") else "mp4")
    body: dict[str, Any] = {"session": args.session, "layout": args.layout, "resolution": args.resolution,
                            "format": fmt, "fps": args.fps}
    for key in ("audio_sources", "video_sources"):
        value = getattr(args, key)
        if value:
            body[key] = [v.strip() for v in value.split(",") if v.strip()]
    if args.trim:
        start, _, end = args.trim.partition(":")
        try:
            body["trim"] = {"start": float(start or 0), "end": float(end) if end else None}
        except ValueError:
            body["trim"] = "invalid"  # parse_request says what a trim must be
    return body


def cmd_compose(cfg: config_mod.Config, data: Path, args: argparse.Namespace) -> int:
    """Compose locally or on a server."""
    from tvapp.core.compositions import RequestError, parse_request

    body = request_body(args)
    try:
        req = parse_request(body)
    except RequestError as exc:
        print(f"tvapp compose: {exc.message}", file=sys.stderr)
        return 2
    if args.server:
        return asyncio.run(_remote(args, body, data))
    return _local(req, data, Path(args.output), args.quiet)


def _local(req: Any, data: Path, output: Path, quiet: bool) -> int:
    from tvapp.compose.render import Job, RenderError, render
    from tvapp.core.compositions import progress
    from tvapp.server.compositions import CompositionRefused, session_tracks
    from tvapp.server.recording_store import DB_FILE, RecordingStore

    if not (data / DB_FILE).exists():
        print(f"tvapp compose: {data} holds no recordings ({DB_FILE} is missing)", file=sys.stderr)
        return 1
    store = RecordingStore(data / DB_FILE)
    try:
        tracks = session_tracks(store, req.session)
    except CompositionRefused as exc:
        print(f"tvapp compose: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()
    started = time.monotonic()
    shown = [0.0]

    def on_progress(done: float, total: float) -> None:
        now = time.monotonic()
        if now - shown[0] >= POLL or done >= total:
            shown[0] = now
            _show(sys.stderr, *progress(started, now, done, total), quiet)

    try:
        duration = render(Job(req, tracks, data / "recordings", output.resolve()), on_progress)
    except RenderError as exc:
        print(f"\ntvapp compose: {exc}", file=sys.stderr)
        return 1
    if not quiet:
        sys.stderr.write(f"\n{duration:.1f} s of video in {time.monotonic() - started:.1f} s\n")
    print(output)
    return 0


def _api_key(data: Path) -> tuple[str, str] | None:
    given = os.environ.get("TVAPP_API_KEY", "")
    if given:
        key_id, _, secret = given.partition(":")
        return (key_id, secret) if key_id and secret else None
    from tvapp.auth.keys import KeyStore, KeyStoreError

    try:
        key = KeyStore(data).signing_key()
    except (KeyStoreError, OSError):
        return None
    return None if key is None else (key.id, key.secret)


async def _remote(args: argparse.Namespace, body: dict[str, Any], data: Path) -> int:
    from tvapp.client.compositions import CompositionClient
    from tvapp.client.rest import ApiError

    key = _api_key(data)
    if key is None:
        print("tvapp compose: --server needs an API key: set TVAPP_API_KEY=KEY_ID:SECRET", file=sys.stderr)
        return 2
    api = CompositionClient(args.server, api_key=key)
    trim = body.get("trim")
    try:
        job = await api.create_composition(
            body["session"], layout=body["layout"], resolution=body["resolution"], format=body["format"],
            fps=body["fps"], audio_sources=body.get("audio_sources"), video_sources=body.get("video_sources"),
            trim=None if trim is None else (trim["start"], trim["end"]))
        while not job.finished:
            _show(sys.stderr, job.percent, job.eta, args.quiet)
            await asyncio.sleep(POLL)
            job = await api.get_composition(job.sid)
        _show(sys.stderr, job.percent, job.eta, args.quiet)
        if not args.quiet:
            sys.stderr.write("\n")
        if job.status != "completed":
            print(f"tvapp compose: composition {job.sid} {job.status}: {job.reason}", file=sys.stderr)
            return 1
        content = await api.download_composition(job.sid)
    except ApiError as exc:
        print(f"\ntvapp compose: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"\ntvapp compose: cannot reach {args.server}: {exc}", file=sys.stderr)
        return 1
    Path(args.output).write_bytes(content)
    print(args.output)
    return 0
