"""Tests for tvapp.tv.display: driver choice, failure reasons in words, offscreen fallback, pacing, screenshots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

os.environ["SDL_VIDEODRIVER"] = "dummy"

import pygame
import pytest

from tvapp.tv.display import Display, DisplayError, open_display

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def display() -> Iterator[Display]:
    shown = open_display(size=(640, 360), fps=50.0)
    yield shown
    shown.close()


def run_child(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter with no video driver chosen and no X or Wayland to talk to."""
    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def test_sdl_videodriver_is_used_at_the_size_asked(display: Display) -> None:
    assert display.driver == "dummy"
    assert display.offscreen and not display.vsync
    assert display.size == (640, 360) == display.surface.get_size()
    assert pygame.display.get_driver() == "dummy"
    assert not pygame.mouse.get_visible()


def test_dummy_without_size_is_full_hd_and_windowed_is_720p() -> None:
    shown = open_display()
    assert shown.size == (1920, 1080)
    shown.close()
    window = open_display(windowed=True)
    assert window.size == (1280, 720)
    window.close()


def test_screenshot_is_a_png_of_the_screen(display: Display, tmp_path: Path) -> None:
    display.surface.fill((10, 20, 30))
    display.surface.fill((250, 100, 0), pygame.Rect(100, 50, 40, 30))
    display.present()
    path = tmp_path / "shot.png"
    display.screenshot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["shot.png"]
    image = pygame.image.load(str(path))
    assert image.get_size() == (640, 360)
    assert tuple(image.get_at((120, 60)))[:3] == (250, 100, 0)
    assert tuple(image.get_at((5, 5)))[:3] == (10, 20, 30)


def test_present_paces_to_fps_without_busy_waiting(display: Display) -> None:
    display.present()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(25):
        display.present()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert 0.45 <= wall <= 0.9  # 25 frames at 50 fps = 0.5 s
    assert cpu < wall / 2


def test_present_does_not_sleep_after_a_slow_frame(display: Display) -> None:
    display.present()
    time.sleep(0.1)  # a frame that took five periods: present must not make it worse
    start = time.perf_counter()
    display.present()
    assert time.perf_counter() - start < 0.015


def test_no_working_driver_names_each_driver_and_why() -> None:
    proc = run_child(
        "from tvapp.tv.display import open_display, DisplayError\n"
        "try:\n"
        "    open_display(drivers=('kmsdrm', 'x11'))\n"
        "except DisplayError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('opened a display')\n")
    assert proc.returncode == 0, proc.stderr
    message = proc.stdout.strip().splitlines()[-1]
    assert "kmsdrm: " in message and "x11: " in message
    assert "no DISPLAY" in message
    assert message.index("kmsdrm") < message.index("x11")
    if not Path("/dev/dri").exists():
        assert "/dev/dri/card" in message


def test_offscreen_fallback_when_no_driver_works() -> None:
    proc = run_child(
        "import json\n"
        "from tvapp.tv.display import open_display\n"
        "d = open_display(drivers=('kmsdrm', 'x11'), offscreen_fallback=True)\n"
        "print(json.dumps([d.driver, d.size, d.offscreen, d.vsync]))\n")
    assert proc.returncode == 0, proc.stderr
    driver, size, offscreen, vsync = json.loads(proc.stdout.strip().splitlines()[-1])
    assert driver in ("offscreen", "dummy")
    assert size == [1920, 1080] and offscreen and not vsync


def test_display_error_is_an_exception_with_words() -> None:
    assert issubclass(DisplayError, Exception)
    proc = run_child(
        "import os\n"
        "os.environ['SDL_VIDEODRIVER'] = 'nosuchdriver'\n"
        "from tvapp.tv.display import open_display, DisplayError\n"
        "try:\n"
        "    open_display(drivers=('kmsdrm',))\n"
        "except DisplayError as exc:\n"
        "    print(exc)\n")
    assert proc.returncode == 0, proc.stderr
    message = proc.stdout.strip().splitlines()[-1]
    assert "nosuchdriver: " in message and "kmsdrm" not in message
