"""Shared fixtures: real core servers on ephemeral 127.0.0.1 ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tvapp.testing.browser import Browser
from tvapp.testing.homes import Homes, built_homes
from tvapp.testing.server import ServerProcess

# tv_screens: the `screen` and `full_hd` pygame fixtures of the renderer tests; web_helpers: the web tests' `bots`,
# `firefox`, `close_firefox_pages`, `example_site`, `unlisted_site` and `sdk_server`.
pytest_plugins = ("tv_screens", "web_helpers")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with default settings, shared by the tests that do not need their own."""
    with ServerProcess(tmp_path_factory.mktemp("server")) as srv:
        yield srv


@pytest.fixture
def make_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers with their own settings (env overrides); all are stopped after the test."""
    started: list[ServerProcess] = []

    def make(**env: str) -> ServerProcess:
        srv = ServerProcess(tmp_path_factory.mktemp("server"), env=env).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture(scope="module")
def media_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose SFU offers only 127.0.0.1 as its ICE host address (one per test module)."""
    env = {"TVAPP_MEDIA_HOST_ADDRESSES": "127.0.0.1", "TVAPP_INVITES_REDEEM_FAILURES": "1000"}
    with ServerProcess(tmp_path_factory.mktemp("media-server"), env=env) as srv:
        yield srv


@pytest.fixture(scope="session")
def clip_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of tvapp.testing.clip.make_clip clips for the session: the same clip is encoded once, not per file."""
    return tmp_path_factory.mktemp("clip-cache")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright (tvapp.testing.browser), one per test module."""
    with Browser() as b:
        yield b


@pytest.fixture
def close_pages(browser: Browser) -> Iterator[None]:
    """Close every page a test opened (use with pytestmark = pytest.mark.usefixtures("close_pages"))."""
    yield
    for opened in list(browser.context.pages):
        browser.errors.pop(opened, None)
        opened.close()


@pytest.fixture
def homes() -> Iterator[Homes]:
    """A cloud and three homes behind NATs (tvapp.testing.homes), torn down after; fails where they cannot be built."""
    with built_homes() as made:
        yield made
