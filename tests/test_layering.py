"""Layering rules: tvapp.core and tvapp.protocol import nothing with I/O and pass mypy --strict (tvapp.web too).

Each module is imported alone in a fresh interpreter, so a module cannot hide behind an import that an
earlier test (or pytest itself) already made.
"""

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import tvapp.core
import tvapp.protocol

REPO_ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = frozenset(
    {
        "asyncio",
        "_asyncio",
        "sqlite3",
        "_sqlite3",
        "websockets",
        "aiortc",
        "av",
        "pygame",
        "zeroconf",
        "socket",
        "_socket",
        "ssl",
        "selectors",
        "uvicorn",
        "fastapi",
        "starlette",
    }
)


def pure_modules() -> list[str]:
    """Return every module and package under tvapp.core and tvapp.protocol."""
    names = []
    for package in (tvapp.core, tvapp.protocol):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            names.append(info.name)
    return sorted(names)


def test_discovery_finds_known_modules() -> None:
    assert {"tvapp.core", "tvapp.core.room", "tvapp.core.codes", "tvapp.protocol"} <= set(pure_modules())


@pytest.mark.parametrize("module", pure_modules())
def test_module_imports_no_io(module: str) -> None:
    program = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps(sorted(set(sys.modules) & set({sorted(FORBIDDEN)!r}))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_mypy_strict_passes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "tvapp/core", "tvapp/protocol", "tvapp/web"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _imports_of(path: Path) -> set[str]:
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("server", ("tvapp.client", "tvapp.tv")), ("client", ("tvapp.server", "tvapp.tv")),
     ("tv", ("tvapp.server", "tvapp.testing")), ("rtc", ("tvapp.server", "tvapp.client", "tvapp.tv", "tvapp.testing")),
     ("web", ("tvapp.server", "tvapp.client", "tvapp.tv", "tvapp.testing", "tvapp.protocol", "tvapp.auth", "tvapp.rtc",
              "tvapp.config"))],
)  # fmt: skip
def test_parts_do_not_import_each_other(package: str, forbidden: tuple[str, ...]) -> None:
    for path in sorted((REPO_ROOT / "tvapp" / package).rglob("*.py")):
        bad = [name for name in _imports_of(path) if name.startswith(forbidden)]
        assert not bad, f"{path.relative_to(REPO_ROOT)} imports {bad}"


def test_aiortc_private_names_are_used_only_in_the_adapter() -> None:
    """tvapp/rtc/internals.py is the one place that reaches into aiortc's private attributes."""
    import re

    private = re.compile(r"_RTC\w+__\w+|\._send_rtcp_pli\b|\._send_keyframe\b|\._codecs\b|\b_data\b|get_host_addresses"
                         r"|\._check_list\b|\._early_checks\b|\._rx_srtp\b|\._rtp_router\b|\._setup_srtp\b"
                         r"|\._handle_rtc?p_data\b")
    for path in sorted((REPO_ROOT / "tvapp").rglob("*.py")):
        if path.name == "internals.py" and path.parent.name == "rtc":
            continue
        hits = [line.strip() for line in path.read_text().splitlines() if private.search(line)]
        assert not hits, f"{path.relative_to(REPO_ROOT)} reaches into aiortc: {hits}"
