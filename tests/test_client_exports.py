"""The Python SDK's package exports what README.md shows: every room event can be imported from tvapp.client."""

from __future__ import annotations

import inspect

import tvapp.client
from tvapp.client import events


def test_every_room_event_is_exported_from_the_package() -> None:
    room_events = {name for name, obj in vars(events).items()
                   if inspect.isclass(obj) and issubclass(obj, events.RoomEvent) and obj.__module__ == events.__name__}
    assert "PlaybackChanged" in room_events
    missing = sorted(name for name in room_events if getattr(tvapp.client, name, None) is not getattr(events, name))
    assert missing == []
    assert room_events <= set(tvapp.client.__all__)
