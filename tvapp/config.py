"""Configuration: `config/tvapp.toml` -> frozen dataclasses, then `TVAPP_*` environment overrides.

The program runs with no config file at all: every key has its default here, and
`config/tvapp.toml` documents the same keys with the same defaults (a test keeps them equal).

Environment overrides are `TVAPP_<SECTION>_<KEY>` (e.g. `TVAPP_SIGNAL_IDLE_TIMEOUT=5`), plus
`TVAPP_DATA` for the data directory and `TVAPP_CONFIG` for the config file path.

A key that names one of a set is typed by its enum (`[tv] layout` and `[watch] layout` are tvapp.core.layout.Mode
values, `[watch] layout` only watch or watch_full): anything else is a ConfigError naming the key and the choices.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
import typing
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

from tvapp.core.hosts import cors_origin_error
from tvapp.core.layout import Mode
from tvapp.core.reconnect import check_grace


class ConfigError(Exception):
    """The config file or an environment override is not valid."""


@dataclass(frozen=True)
class ServerConfig:
    """The [server] section (config/tvapp.toml documents each key)."""

    host: str = "127.0.0.1"
    port: int = 8800
    data_dir: str = ""
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()  # the older name of cors_origins: both lists are let in
    max_body_bytes: int = 65_536
    max_header_bytes: int = 16_384
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    auth_failures: int = 20
    auth_window: float = 60.0
    tls: str = "auto"
    tls_cert: str = ""
    tls_key: str = ""
    trusted_proxies: tuple[str, ...] = ()

    @property
    def origins(self) -> tuple[str, ...]:
        """Return every other origin let in (CORS and the websocket): cors_origins, then the older allowed_origins."""
        return self.cors_origins + tuple(o for o in self.allowed_origins if o not in self.cors_origins)


TLS_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class AuthConfig:
    """The [auth] section (config/tvapp.toml documents each key)."""

    audience: str = "tvapp"
    leeway: float = 5.0
    access_ttl: int = 600
    access_ttl_max: int = 86_400
    refresh_ttl: int = 86_400


@dataclass(frozen=True)
class RoomsConfig:
    """The [rooms] section (config/tvapp.toml documents each key)."""

    max_participants: int = 6
    empty_timeout: int = 300
    reaper_interval: float = 1.0


@dataclass(frozen=True)
class InvitesConfig:
    """The [invites] section (config/tvapp.toml documents each key)."""

    ttl: int = 900
    ttl_max: int = 86_400
    max_uses: int = 10
    redeem_failures: int = 5
    redeem_window: float = 60.0


@dataclass(frozen=True)
class SignalConfig:
    """The [signal] section (config/tvapp.toml documents each key)."""

    join_timeout: float = 10.0
    idle_timeout: float = 30.0
    ping_interval: float = 10.0
    max_message_bytes: int = 65_536
    send_queue_max: int = 1_000
    data_rate_bytes: int = 262_144
    data_burst_bytes: int = 1_048_576
    data_rate_messages: float = 50.0
    data_burst_messages: int = 200
    control_rate_messages: float = 20.0
    control_burst_messages: int = 100
    reconnect_grace: float = 20.0


@dataclass(frozen=True)
class MediaConfig:
    """The [media] section (config/tvapp.toml documents each key)."""

    host_addresses: tuple[str, ...] = ()
    ice_servers: tuple[str, ...] = ()
    ice_username: str = ""
    ice_credential: str = field(default="", repr=False, metadata={"secret": True})
    video_codecs: tuple[str, ...] = ("VP8", "H264")
    keyframe_interval: float = 0.3
    max_video_bitrate: int = 2_500_000
    speaker_interval: float = 0.05
    turn_urls: tuple[str, ...] = ()
    turn_secret: str = field(default="", repr=False, metadata={"secret": True})
    turn_ttl: int = 43_200
    sfu_uses_turn: bool = False
    udp_port_range: str = ""
    announced_addresses: tuple[str, ...] = ()
    congestion_control: bool = True


@dataclass(frozen=True)
class TvConfig:
    """The [tv] section (config/tvapp.toml documents each key)."""

    friendly_name: str = ""
    margin: float = 0.05
    layout: Mode = Mode.GRID
    fps: float = 60.0
    video_drivers: tuple[str, ...] = ("kmsdrm", "x11", "wayland")
    screenshots_dir: str = ""
    screenshot_interval: float = 5.0
    room: str = "living-room"
    zeroconf_interfaces: tuple[str, ...] = ()
    remote_port: int = 7881
    remote_host: str = "0.0.0.0"
    tls: bool = True
    allowed_hosts: tuple[str, ...] = ()
    pairing_backoff_max: float = 30.0
    camera: str = "auto"
    microphone: str = "auto"
    echo_cancellation: bool = True
    noise_suppression: bool = True
    auto_gain: bool = True
    adaptive_stream: bool = True  # false: no track_settings, full-size streams (bench/tv_decode.py's baseline)


@dataclass(frozen=True)
class AudioConfig:
    """The [audio] section (config/tvapp.toml documents each key)."""

    device: str = ""
    volume: float = 1.0
    chunk_ms: float = 10.0
    max_queue_ms: float = 60.0


@dataclass(frozen=True)
class WatchConfig:
    """The [watch] section (config/tvapp.toml documents each key)."""

    control: str = "host"
    on_stall: str = "pause"
    lead: float = 0.4
    stall_timeout: float = 15.0
    live_delay: float = 6.0
    content_proxy: str = ""
    allow_private: bool = True
    media_dir: str = ""
    content_volume: float = 1.0
    duck_db: float = -12.0
    layout: Mode = field(default=Mode.WATCH, metadata={"choices": (Mode.WATCH, Mode.WATCH_FULL)})


@dataclass(frozen=True)
class WebhooksConfig:
    """The [webhooks] section (config/tvapp.toml documents each key)."""

    urls: tuple[str, ...] = ()
    timeout: float = 10.0
    max_attempts: int = 10
    base_delay: float = 1.0
    max_delay: float = 300.0
    allow_private: bool = True


@dataclass(frozen=True)
class RecordingsConfig:
    """The [recordings] section (config/tvapp.toml documents each key)."""

    quota_bytes: int = 0
    retention_days: float = 0.0
    retention_interval: float = 3600.0


@dataclass(frozen=True)
class Config:
    """The whole configuration: one frozen dataclass per section."""

    server: ServerConfig = field(default_factory=ServerConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    rooms: RoomsConfig = field(default_factory=RoomsConfig)
    invites: InvitesConfig = field(default_factory=InvitesConfig)
    signal: SignalConfig = field(default_factory=SignalConfig)
    media: MediaConfig = field(default_factory=MediaConfig)
    tv: TvConfig = field(default_factory=TvConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    watch: WatchConfig = field(default_factory=WatchConfig)
    webhooks: WebhooksConfig = field(default_factory=WebhooksConfig)
    recordings: RecordingsConfig = field(default_factory=RecordingsConfig)

    def data_path(self) -> Path:
        """Return the data directory: the configured one, else $XDG_DATA_HOME/tvapp or ~/.local/share/tvapp."""
        if self.server.data_dir:
            return Path(self.server.data_dir).expanduser()
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(base) / "tvapp"


def load(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load the config file (if any) and apply environment overrides; raise ConfigError when invalid."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    path = path or env.get("TVAPP_CONFIG") or None
    if path:
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    sections: dict[str, Any] = {}
    for sec in dataclasses.fields(Config):
        cls = _section_class(sec.name)
        table = raw.pop(sec.name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{sec.name}] must be a table")
        values = dict(table)
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise ConfigError(f"unknown key(s) in [{sec.name}]: {', '.join(sorted(unknown))}")
        for name in known:
            key = f"TVAPP_{sec.name.upper()}_{name.upper()}"
            if key in env:
                values[name] = env[key]
        if sec.name == "server" and env.get("TVAPP_DATA"):
            values["data_dir"] = env["TVAPP_DATA"]
        sections[sec.name] = cls(**{n: _coerce(sec.name, n, v, known[n].metadata) for n, v in values.items()})
    if raw:
        raise ConfigError(f"unknown section(s): {', '.join(sorted(raw))}")
    loaded = Config(**sections)
    _check_limits(loaded)
    return loaded


def _check_limits(config: Config) -> None:
    """Refuse connection limits that would let nothing through (or everything)."""
    server = config.server
    if server.max_header_bytes < 1024:
        raise ConfigError(f"[server] max_header_bytes must be at least 1024, got {server.max_header_bytes}")
    for name in ("header_timeout", "body_timeout"):
        if not getattr(server, name) > 0:
            raise ConfigError(f"[server] {name} must be greater than 0 (seconds), got {getattr(server, name)}")
    if server.auth_failures < 1 or not server.auth_window > 0:
        raise ConfigError("[server] auth_failures must be at least 1 and auth_window greater than 0 (seconds)")
    if server.tls not in TLS_MODES:
        raise ConfigError(f"[server] tls must be one of {', '.join(TLS_MODES)}, got {server.tls!r}")
    if bool(server.tls_cert) != bool(server.tls_key):
        raise ConfigError("[server] tls_cert and tls_key go together: set both or neither")
    if server.tls == "off" and server.tls_cert:
        raise ConfigError('[server] tls = "off" with tls_cert set: remove one of them')
    for name in ("cors_origins", "allowed_origins"):
        for entry in getattr(server, name):
            problem = cors_origin_error(entry)
            if problem:
                raise ConfigError(f"[server] {name}: {problem}")
    for entry in server.trusted_proxies:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(f"[server] trusted_proxies: {entry!r} is not an IP address or CIDR network") from None
    try:
        check_grace(config.signal.reconnect_grace)
    except ValueError as exc:
        raise ConfigError(f"[signal] {exc}") from None
    _check_media(config.media)
    _check_webhooks(config.webhooks)
    _check_recordings(config.recordings)


def _check_webhooks(hooks: WebhooksConfig) -> None:
    """Refuse [webhooks] values that cannot work."""
    from tvapp.core.webhooks import CallbackError, RetryPolicy, check_callback_url

    for url in hooks.urls:
        try:
            check_callback_url(url, allow_private=hooks.allow_private)
        except CallbackError as exc:
            raise ConfigError(f"[webhooks] urls: {exc.message}") from None
    if not hooks.timeout > 0:
        raise ConfigError(f"[webhooks] timeout must be greater than 0 (seconds), got {hooks.timeout}")
    try:
        RetryPolicy(hooks.max_attempts, hooks.base_delay, hooks.max_delay)
    except ValueError as exc:
        raise ConfigError(f"[webhooks] {exc}") from None


def _check_recordings(recordings: RecordingsConfig) -> None:
    """Refuse [recordings] values that mean nothing (a negative quota or retention, a zero interval)."""
    if recordings.quota_bytes < 0 or recordings.retention_days < 0:
        raise ConfigError("[recordings] quota_bytes and retention_days must not be negative (0 = no limit)")
    if not recordings.retention_interval > 0:
        raise ConfigError("[recordings] retention_interval must be greater than 0 (seconds)")


def _check_media(media: MediaConfig) -> None:
    """Refuse [media] reachability values that cannot work (the secret is never part of a message)."""
    from tvapp.core import reach

    try:
        for url in media.turn_urls:
            reach.parse_turn_url(url)
        reach.parse_port_range(media.udp_port_range)
        reach.parse_announced(media.announced_addresses)
    except ValueError as exc:
        raise ConfigError(f"[media] {exc}") from None
    if media.turn_ttl <= 0:
        raise ConfigError(f"[media] turn_ttl must be greater than 0 (seconds), got {media.turn_ttl}")
    if media.sfu_uses_turn and not media.turn_urls:
        raise ConfigError("[media] sfu_uses_turn needs turn_urls")


def _section_class(name: str) -> type:
    hints = typing.get_type_hints(Config)
    cls = hints[name]
    assert isinstance(cls, type)
    return cls


def _coerce(section: str, name: str, value: Any, metadata: Mapping[str, Any]) -> Any:
    hint = typing.get_type_hints(_section_class(section))[name]
    where = f"[{section}] {name}"
    if isinstance(hint, type) and issubclass(hint, Enum):  # one of a set of names, e.g. a layout Mode
        choices = tuple(metadata.get("choices", hint))
        chosen = next((choice for choice in choices if isinstance(value, str) and value == choice.value), None)
        if chosen is None:
            names = ", ".join(choice.value for choice in choices)
            raise ConfigError(f"{where} must be one of {names}, got {value!r}")
        return chosen
    if typing.get_origin(hint) is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings")
        return tuple(value)
    try:
        if hint is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if hint is str:
            if not isinstance(value, str):
                raise ValueError(value)
            return value
    except (TypeError, ValueError):
        shown = "a value of another type" if metadata.get("secret") else repr(value)
        raise ConfigError(f"{where} must be of type {getattr(hint, '__name__', hint)}, got {shown}") from None
    raise ConfigError(f"{where}: unsupported type {hint!r}")  # pragma: no cover - a programming error


__all__ = ["Config", "ConfigError", "load"]
