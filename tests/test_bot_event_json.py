"""`tvapp bot` prints every room event with its fields (README: "events as JSON lines"): network quality,
switched-off tracks and the shared timeline carry what the SDK's events carry, not just their names."""

from __future__ import annotations

import json

from tvapp.client import events as ev
from tvapp.client.participants import RemoteParticipant, RemoteTrackPublication
from tvapp.commands.bot import event_json
from tvapp.core.timeline import PlaybackState
from tvapp.protocol import messages as m


def remote() -> tuple[RemoteParticipant, RemoteTrackPublication]:
    track = m.TrackInfo(sid="TR_v", kind="video", source="camera")
    who = RemoteParticipant(m.ParticipantInfo(sid="PA_a", identity="ann", joined_at=1.0, tracks=(track,)))
    return who, RemoteTrackPublication(track, who)


def test_network_quality_line_carries_the_level_and_both_directions() -> None:
    who, _ = remote()
    up = m.LinkQuality(level=4, loss=0.02, jitter_ms=3.0, rtt_ms=40.0)
    line = event_json(ev.NetworkQualityChanged(participant=who, level=4, previous=5, uplink=up, downlink=None))
    assert line == {"event": "network_quality_changed", "participant_sid": "PA_a", "identity": "ann", "level": 4,
                    "previous": 5, "uplink": {"level": 4, "loss": 0.02, "jitter_ms": 3.0, "rtt_ms": 40.0},
                    "downlink": None}


def test_switched_off_and_on_lines_name_the_track_and_the_reason() -> None:
    who, pub = remote()
    assert event_json(ev.TrackSwitchedOff(track=pub, participant=who, reason="congestion")) == {
        "event": "track_switched_off", "participant_sid": "PA_a", "identity": "ann", "track_sid": "TR_v",
        "reason": "congestion"}
    assert event_json(ev.TrackSwitchedOn(track=pub, participant=who)) == {
        "event": "track_switched_on", "participant_sid": "PA_a", "identity": "ann", "track_sid": "TR_v"}


def test_playback_line_carries_the_timeline_and_is_json() -> None:
    state = PlaybackState(content="http://cdn/live.m3u8", title="Match", playing=True, position=100.0, at=50.0,
                          seq=3, live=True, live_edge=106.0, delay=6.0, window=60.0)
    line = event_json(ev.PlaybackChanged(state=state))
    assert line["event"] == "playback_changed"
    assert (line["content"], line["live"], line["delay"], line["live_edge"]) == ("http://cdn/live.m3u8", True, 6.0,
                                                                                  106.0)
    json.dumps(line)
