"""The Python SDK: `Room.connect(url, token)` joins a room; publish local tracks, receive remote ones, get typed events.

    room = await Room.connect("http://127.0.0.1:8800", token, refresh_token=refresh)
    room.on(TrackSubscribed, lambda e: print(e.participant.identity, e.track.kind))
    await room.local_participant.set_camera_enabled(True)
    ...
    await room.disconnect()
"""

from tvapp.client.events import (
    ActiveSpeakersChanged,
    NetworkQualityChanged,
    Connected,
    DataReceived,
    Disconnected,
    Error,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantReconnected,
    ParticipantReconnecting,
    PlaybackChanged,
    Reconnected,
    Reconnecting,
    RoomEvent,
    Speaker,
    TrackMuted,
    TrackPublished,
    TrackSubscribed,
    TrackSwitchedOff,
    TrackSwitchedOn,
    TrackUnmuted,
    TrackUnpublished,
    TrackUnsubscribed,
    UnmuteRequested,
)
from tvapp.client.negotiation import ReceiveStats
from tvapp.client.participants import (
    LocalParticipant,
    LocalTrackPublication,
    RemoteParticipant,
    RemoteTrack,
    RemoteTrackPublication,
)
from tvapp.client.requests import RequestError
from tvapp.client.rest import ApiError, RestClient
from tvapp.client.room import Room
from tvapp.client.signaling import JoinError

__all__ = [
    "ActiveSpeakersChanged", "NetworkQualityChanged", "ApiError", "Connected", "DataReceived", "Disconnected", "Error", "JoinError",
    "LocalParticipant", "LocalTrackPublication", "ParticipantJoined", "ParticipantLeft", "ParticipantReconnected",
    "ParticipantReconnecting", "PlaybackChanged", "ReceiveStats",
    "Reconnected", "Reconnecting", "RemoteParticipant", "RemoteTrack", "RemoteTrackPublication", "RequestError",
    "RestClient", "Room", "RoomEvent", "Speaker", "TrackMuted", "TrackPublished", "TrackSubscribed", "TrackUnmuted",
    "TrackUnpublished", "TrackUnsubscribed", "UnmuteRequested", "TrackSwitchedOff", "TrackSwitchedOn",
]
