"""The TV's screen: pick a video driver that works, open it fullscreen, and pace presented frames to it.

On a Pi without X the display is reached through kmsdrm; on a desktop through x11 or wayland. Each
driver is tried in turn and the reason each one failed is kept, so that when none works the user reads
which drivers were tried and why, in words. Demos and tests without a screen use SDL's "dummy" or
"offscreen" driver (`offscreen_fallback=True`, or `SDL_VIDEODRIVER=dummy`).
"""

from __future__ import annotations

import glob
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pygame

OFFSCREEN_DRIVERS = ("offscreen", "dummy")
OFFSCREEN_SIZE = (1920, 1080)
WINDOW_SIZE = (1280, 720)


class DisplayError(Exception):
    """No video driver could open a screen; the message names each driver tried and why it failed."""


@dataclass
class Display:
    """An open screen: draw on `surface`, then `present()` once per frame."""

    surface: pygame.Surface
    size: tuple[int, int]
    driver: str
    vsync: bool
    offscreen: bool
    fps: float = 60.0
    _deadline: float | None = field(default=None, repr=False)

    def present(self) -> None:
        """Show the drawn frame; without vsync, sleep until the next frame's slot at `fps` (no busy wait)."""
        pygame.display.flip()
        if self.vsync or self.fps <= 0:
            return
        period = 1.0 / self.fps
        now = time.perf_counter()
        if self._deadline is None or now - self._deadline > period:
            self._deadline = now + period  # first frame, or fell behind: start the cadence again from now
            return
        wait = self._deadline - now
        if wait > 0:
            time.sleep(wait)
        self._deadline += period

    def screenshot(self, path: Path) -> None:
        """Save what is on screen as a PNG at `path`, readable by this user only (written aside, then renamed)."""
        path = Path(path)
        partial = path.with_name(f".{path.stem}.partial.png")
        pygame.image.save(self.surface, str(partial))
        os.chmod(partial, 0o600)  # the screen may show an invite code, a pairing code or its QR secret
        os.replace(partial, path)

    def close(self) -> None:
        """Close the screen and shut the video subsystem down."""
        pygame.display.quit()


def _why(driver: str, sdl_error: str) -> str:
    """Return the SDL error for `driver` with the likely cause in words."""
    hint = ""
    if driver == "kmsdrm":
        cards = glob.glob("/dev/dri/card*")
        if not cards:
            hint = "no /dev/dri/card* device: no KMS graphics driver loaded, on a Pi enable dtoverlay=vc4-kms-v3d"
        elif not all(os.access(card, os.R_OK | os.W_OK) for card in cards):
            hint = f"no access to {', '.join(sorted(cards))}: add the user to the video and render groups"
        else:
            hint = "is another program, X or a desktop, holding the display?"
    elif driver == "x11" and not os.environ.get("DISPLAY"):
        hint = "no DISPLAY: no X server to connect to"
    elif driver == "wayland" and not os.environ.get("WAYLAND_DISPLAY"):
        hint = "no WAYLAND_DISPLAY: no Wayland compositor to connect to"
    return f"{sdl_error} ({hint})" if hint else sdl_error


def _set_mode(driver: str, *, windowed: bool, size: tuple[int, int] | None,
              title: str) -> tuple[pygame.Surface, bool]:
    """Initialise the display with `driver` and open the screen; return (surface, vsync)."""
    os.environ["SDL_VIDEODRIVER"] = driver
    pygame.display.init()
    try:
        pygame.display.set_caption(title)
        offscreen = driver in OFFSCREEN_DRIVERS
        if windowed:
            mode, flags = size or WINDOW_SIZE, 0
        elif offscreen:
            mode, flags = size or OFFSCREEN_SIZE, 0  # these drivers have no native size worth using
        else:
            mode, flags = size or pygame.display.get_desktop_sizes()[0], pygame.FULLSCREEN
        surface: pygame.Surface | None = None
        vsync = False
        if not offscreen:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    surface = pygame.display.set_mode(mode, flags, vsync=1)
                vsync = pygame.display.is_vsync()
            except pygame.error:
                surface = None
        if surface is None:
            surface = pygame.display.set_mode(mode, flags)
        pygame.mouse.set_visible(False)
        return surface, vsync
    except BaseException:
        pygame.display.quit()
        raise


def open_display(*, windowed: bool = False, size: tuple[int, int] | None = None,
                 drivers: Sequence[str] = ("kmsdrm", "x11", "wayland"), offscreen_fallback: bool = False,
                 fps: float = 60.0, title: str = "tvapp") -> Display:
    """Open the screen with the first driver that works (only $SDL_VIDEODRIVER when set), or raise DisplayError."""
    chosen = os.environ.get("SDL_VIDEODRIVER")
    candidates = [chosen] if chosen else list(drivers)
    failures: list[str] = []
    for driver in candidates:
        try:
            surface, vsync = _set_mode(driver, windowed=windowed, size=size, title=title)
        except pygame.error as exc:
            failures.append(f"{driver}: {_why(driver, str(exc) or 'failed')}")
            continue
        return Display(surface, surface.get_size(), driver, vsync, driver in OFFSCREEN_DRIVERS, fps)
    if offscreen_fallback:
        for driver in OFFSCREEN_DRIVERS:
            try:
                surface, _ = _set_mode(driver, windowed=False, size=size or OFFSCREEN_SIZE, title=title)
            except pygame.error as exc:
                failures.append(f"{driver}: {exc}")
                continue
            return Display(surface, surface.get_size(), driver, False, True, fps)
    if chosen:
        os.environ["SDL_VIDEODRIVER"] = chosen
    else:
        os.environ.pop("SDL_VIDEODRIVER", None)
    raise DisplayError("no video driver could open the screen; tried " + "; ".join(failures))
