"""The TVs this phone (or computer) is paired with, in one JSON file of mode 0600.

Pairing (tvapp.client.remote_link) gives a device id and a credential per TV; `CredentialFile` keeps them, with
the TV's URL, name and pinned certificate fingerprint, in $TVAPP_REMOTE_CONFIG or
$XDG_CONFIG_HOME/tvapp/remote.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from pathlib import Path

CONFIG_ENV = "TVAPP_REMOTE_CONFIG"


@dataclasses.dataclass(frozen=True)
class PairedTv:
    """What pairing with one TV gave this phone."""

    url: str
    tv_name: str
    device_id: str
    credential: str = dataclasses.field(repr=False)
    fingerprint: str | None = None


def default_config_path() -> Path:
    """Return where the paired TVs are kept: $TVAPP_REMOTE_CONFIG, else $XDG_CONFIG_HOME/tvapp/remote.json."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return Path(override)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tvapp" / "remote.json"


class CredentialFileError(Exception):
    """The file of paired TVs cannot be read or written."""


class CredentialFile:
    """The paired TVs, in one JSON file of mode 0600 (its folder 0700 when this creates it)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_config_path()

    def load(self) -> list[PairedTv]:
        """Return every paired TV (none when the file does not exist)."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CredentialFileError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(raw)
            return [PairedTv(url=str(t["url"]), tv_name=str(t["tv_name"]), device_id=str(t["device_id"]),
                             credential=str(t["credential"]),
                             fingerprint=None if t.get("fingerprint") is None else str(t["fingerprint"]))
                    for t in data["tvs"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise CredentialFileError(f"{self.path} is not a tvapp remote file ({exc.__class__.__name__})") from None

    def save(self, tvs: list[PairedTv]) -> None:
        """Replace the file's contents with ``tvs`` atomically, mode 0600."""
        directory = self.path.parent
        if not directory.exists():
            directory.mkdir(mode=0o700, parents=True)
            os.chmod(directory, 0o700)
        data = {"version": 1, "tvs": [dataclasses.asdict(t) for t in tvs]}
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".remote-", suffix=".tmp")  # mkstemp makes it 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def add(self, tv: PairedTv) -> None:
        """Store a newly paired TV, replacing an older pairing with the same URL or the same name."""
        kept = [t for t in self.load() if _norm_url(t.url) != _norm_url(tv.url) and t.tv_name != tv.tv_name]
        self.save([*kept, tv])

    def remove(self, tv: PairedTv) -> None:
        """Forget one paired TV."""
        self.save([t for t in self.load() if not (t.url == tv.url and t.device_id == tv.device_id)])

    def pick(self, name_or_url: str | None) -> PairedTv:
        """Return the paired TV named or at ``name_or_url``; the only one when None. Raise LookupError otherwise."""
        tvs = self.load()
        if not tvs:
            raise LookupError(f"no paired TV (none in {self.path}): run `tvapp remote pair NAME` first")
        if name_or_url is None:
            if len(tvs) > 1:
                names = ", ".join(f"{t.tv_name!r} ({t.url})" for t in tvs)
                raise LookupError(f"several TVs are paired ({names}): say which with --tv NAME_OR_URL")
            return tvs[0]
        for tv in tvs:
            if _norm_url(tv.url) == _norm_url(name_or_url):
                return tv
        matches = [t for t in tvs if t.tv_name.casefold() == name_or_url.casefold()]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise LookupError(f"several paired TVs are called {name_or_url!r}: say which by URL")
        names = ", ".join(f"{t.tv_name!r} ({t.url})" for t in tvs)
        raise LookupError(f"no paired TV is called or at {name_or_url!r} (paired: {names})")


def _norm_url(url: str) -> str:
    return url.strip().rstrip("/").lower()
