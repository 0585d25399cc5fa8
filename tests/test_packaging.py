"""Every file the product reads from its own package (web pages, py.typed) is listed in pyproject's package-data.

`make` installs in editable mode, where a file left out of package-data is still found; a wheel (`pip install .`)
would ship without it. This checks the globs the way setuptools expands them (glob, relative to tvapp/).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = REPO_ROOT / "tvapp"


def shipped() -> set[Path]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["tvapp"]
    return {path for pattern in globs for path in PACKAGE.glob(pattern) if path.is_file()}


def data_files() -> set[Path]:
    """Files under tvapp/ that are not Python source or bytecode."""
    return {path for path in PACKAGE.rglob("*") if path.is_file() and path.suffix not in {".py", ".pyc"}
            and "__pycache__" not in path.parts}


def test_every_data_file_under_tvapp_is_in_package_data() -> None:
    missing = sorted(str(path.relative_to(PACKAGE)) for path in data_files() - shipped())
    assert missing == [], f"add these to [tool.setuptools.package-data] in pyproject.toml: {missing}"


def test_the_web_pages_are_among_them() -> None:
    names = {path.relative_to(PACKAGE).as_posix() for path in shipped()}
    assert {"py.typed", "server/web/index.html", "tv/remote/web/remote.html", "tv/remote/web/remote.js",
            "server/web/sdk/tvapp.js", "server/web/sdk/tvapp.d.ts", "server/web/sdk/package.json",
            "server/web/sdk/livemap.js", "server/web/vendor/hls.light.min.mjs",
            "server/web/vendor/hls.js.LICENSE"} <= names
