"""Layering rules: tvapp.core and tvapp.protocol import nothing with I/O and pass mypy --strict.

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
        [sys.executable, "-m", "mypy", "tvapp/core", "tvapp/protocol"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout + result.stderr
