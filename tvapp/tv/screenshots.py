"""The TV's screenshots: `latest.png` and a `latest.json` sidecar saying what is where on the screen.

The frame loop (tvapp.tv.app) takes one every `--screenshot-interval` seconds and on SIGUSR1. The sidecar holds
the screen's kind, mode, invite code, each tile's rectangle and video rectangle, every text's rectangle, the
toasts, the pairing card, the join QR code, the content's state and the TV's own devices: tests and the remote
read it instead of parsing pixels.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from tvapp.tv.display import Display
from tvapp.tv.render import Renderer
from tvapp.tv.scene import ErrorScreen, RoomScreen, Scene
from tvapp.tv.session import TvSession


class Screenshots:
    """PNG screenshots plus a JSON sidecar saying where each tile is: `latest.png` and `latest.json` in a folder.

    Both files are mode 0600 (and a folder created here 0700): a screenshot may show the invite code, the pairing
    code and the QR code's secret, and the sidecar spells them out.
    """

    def __init__(self, folder: Path, interval: float) -> None:
        self.folder = folder
        self.interval = interval
        self.seq = 0
        self._next = 0.0
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def due(self, now: float) -> bool:
        """Return whether a screenshot is due at monotonic time `now` (the first frame's always is)."""
        return self.seq == 0 or (self.interval > 0 and now >= self._next)

    def take(self, display: Display, renderer: Renderer, scene: Scene, session: TvSession, now: float) -> None:
        """Save the screen and its sidecar (the sidecar last: it says the PNG is complete)."""
        self._next = now + self.interval
        self.seq += 1
        display.screenshot(self.folder / "latest.png")
        info = session.tile_info()
        tiles = []
        for sid, rect in renderer.tile_rects.items():
            video = renderer.video_rects.get(sid)
            shown = info.get(sid)
            tiles.append({"sid": sid, **(shown.to_json() if shown is not None else {}), "rect": list(_rect(rect)),
                          "video_rect": list(_rect(video)) if video is not None else None})
        screen = scene.screen
        sidecar = {
            "seq": self.seq, "time": time.time(), "size": list(display.size), "driver": display.driver,
            "safe": list(_rect(renderer.safe)), "screen": type(screen).__name__,
            "mode": screen.mode if isinstance(screen, RoomScreen) else None,
            "invite_code": screen.bar.invite_code if isinstance(screen, RoomScreen) else None,
            "where": screen.bar.where if isinstance(screen, RoomScreen) else None,
            "tiles": tiles, "text_rects": [list(_rect(r)) for r in renderer.text_rects],
            "toasts": list(scene.toasts),
            "error": ({"title": screen.title, "message": screen.message, "hint": screen.hint}
                      if isinstance(screen, ErrorScreen) else None),
            "pairing": renderer.pairing.to_json() if renderer.pairing is not None else None,
            "join_qr": renderer.join_qr.to_json() if renderer.join_qr is not None else None,
            "content": _content_json(renderer, session),
            "local": _local_json(renderer, scene, session),
        }
        partial = self.folder / ".latest.json.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a partial file left over from before keeps its mode otherwise
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(sidecar))
        os.replace(partial, self.folder / "latest.json")


def _content_json(renderer: Renderer, session: TvSession) -> dict[str, Any] | None:
    """Return where the content is on screen and what the player says, for the sidecar (None: no content)."""
    if renderer.content_rect is None:
        return None
    player = session.content.player
    status = player.status() if player is not None else None
    video = renderer.content_video_rect
    return {"rect": list(_rect(renderer.content_rect)), "video_rect": list(_rect(video)) if video else None,
            "pts": status.position if status is not None else None,
            "stalled": status.stalled if status is not None else None,
            "media_error": status.media_error if status is not None else None,
            "status": view.status if (view := session.content.view()) is not None else None,
            "badge": view.badge if view is not None else None,
            "gain": session.audio.content_gain if session.audio is not None else None}


def _local_json(renderer: Renderer, scene: Scene, session: TvSession) -> dict[str, Any] | None:
    """Return the TV's own devices for the sidecar: their states as drawn, frames read so far, where the indicator
    and self-view are."""
    media = session.media
    if media is None:
        return None
    indicator, view = renderer.privacy.indicator_rect, renderer.privacy.self_view_rect
    shown = scene.screen.local if isinstance(scene.screen, RoomScreen) else None
    return {**media.stats(), "camera": shown.camera if shown else None, "mic": shown.mic if shown else None,
            "echo": session.echo_json(),
            "indicator_rect": list(_rect(indicator)) if indicator else None,
            "self_view_rect": list(_rect(view)) if view else None}


def _rect(rect: Any) -> tuple[int, int, int, int]:
    return (rect.x, rect.y, rect.w, rect.h)
