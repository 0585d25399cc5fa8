"""The people and tracks in a Room: remote participants and their publications, the RemoteTrack a subscription
delivers decoded frames on, and this client's LocalParticipant with its LocalTrackPublications.

A local publication sends through a fresh chain per peer connection (a closed aiortc sender stops the track it
sends): source -> LocalFeed (tvapp.client.feeds: mute gate, size and frame-rate limits, the server's constraints) -> EncodedVideoTrack for video. The user's
source is never stopped by the SDK unless the SDK made it (set_camera_enabled / set_microphone_enabled / preview).

These objects never see the Room: they talk to a `RoomLink` (tvapp.client.requests: send, request, connection
state). The Room's negotiation (tvapp.client.negotiation) uses their public hooks: `RemoteTrack.deliver` / `end`,
`LocalTrackPublication.attach_sender` / `detach_sender` / `set_server_muted`, `LocalParticipant.rejoin_messages`
and `stop_owned_sources`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import deque
from collections.abc import Iterable
from typing import Any, Literal

import av
from aiortc import MediaStreamTrack, RTCRtpSender
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from tvapp.client.feeds import EncodedFeed, LocalFeed, is_encoded
from tvapp.client.renditions import NoFormat, forget, low_rendition
from tvapp.client.requests import RequestError, RoomLink
from tvapp.core.adaptive import Constraints
from tvapp.protocol import messages as m
from tvapp.rtc import internals

SourceName = Literal["camera", "microphone", "screen_share", "screen", "screen_audio", "content", "unknown"]

DEFAULT_VIDEO_BITRATE = 800_000
VIDEO_QUEUE = 30
AUDIO_QUEUE = 250

__all__ = [
    "LocalParticipant", "LocalTrackPublication", "RemoteParticipant", "RemoteTrack", "RemoteTrackPublication",
    "RequestError", "SourceName",
]


# --- remote side ---------------------------------------------------------------------------------------------------


class RemoteTrack(MediaStreamTrack):
    """One subscription's media: ``await track.recv()`` returns decoded av frames (MediaStreamError once it ends).

    If the reader falls behind, the oldest frames are dropped (``dropped`` counts them).
    """

    def __init__(self, kind: str, sid: str, publication: RemoteTrackPublication) -> None:
        super().__init__()
        self.kind = kind
        self.sid = sid
        self.publication = publication
        self.frames_received = 0
        self.dropped = 0
        self._ended = False
        self._frames: deque[av.AudioFrame | av.VideoFrame] = deque()
        self._limit = VIDEO_QUEUE if kind == "video" else AUDIO_QUEUE
        self._ready = asyncio.Event()

    @property
    def participant(self) -> RemoteParticipant:
        """Return the participant publishing this track."""
        return self.publication.participant

    async def recv(self) -> av.AudioFrame | av.VideoFrame:
        """Return the next decoded frame, waiting for one."""
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()

    def stop(self) -> None:
        """End the track: recv() raises MediaStreamError once the frames already received are read."""
        super().stop()
        self._ready.set()

    def __repr__(self) -> str:
        return f"<RemoteTrack {self.sid} {self.kind} of {self.publication.participant.identity} ({self.readyState})>"

    def end(self) -> bool:
        """End this subscription's track (the SDK calls it when the subscription ends); False if already ended."""
        if self._ended:
            return False
        self._ended = True
        self.stop()
        return True

    def deliver(self, frame: av.AudioFrame | av.VideoFrame) -> None:
        """Queue a decoded frame for `recv` (the SDK calls it for each frame that arrives)."""
        if self.readyState != "live":
            return
        self.frames_received += 1
        if len(self._frames) >= self._limit:
            self._frames.popleft()
            self.dropped += 1
        self._frames.append(frame)
        self._ready.set()


class RemoteTrackPublication:
    """A track another participant publishes; ``track`` is set while this client is subscribed to it."""

    def __init__(self, info: m.TrackInfo, participant: RemoteParticipant) -> None:
        self.sid = info.sid
        self.kind = info.kind
        self.source = info.source
        self.name = info.name
        self.muted = info.muted
        self.participant = participant
        self.track: RemoteTrack | None = None
        self.switched_off: str | None = None  # the reason while the SFU does not send it (TrackSwitchedOff)

    @property
    def subscribed(self) -> bool:
        """Return whether media of this track is arriving."""
        return self.track is not None

    def __repr__(self) -> str:
        return f"<RemoteTrackPublication {self.sid} {self.kind}/{self.source} of {self.participant.identity}>"


class RemoteParticipant:
    """Another participant in the room and the tracks it publishes (``tracks`` by track sid)."""

    def __init__(self, info: m.ParticipantInfo) -> None:
        self.sid = info.sid
        self.identity = info.identity
        self.name = info.name
        self.joined_at = info.joined_at
        self.reconnecting = info.reconnecting  # its connection dropped; the server keeps its place for a while
        # 0..5 as the SFU measures it (5 excellent .. 1 bad, 0 broken; None until measured): NetworkQualityChanged.
        self.network_quality: int | None = info.network_quality
        self.network_quality_info: m.NetworkQualityInfo | None = None  # the last report: uplink and downlink
        self.tracks: dict[str, RemoteTrackPublication] = {t.sid: RemoteTrackPublication(t, self) for t in info.tracks}

    def __repr__(self) -> str:
        return f"<RemoteParticipant {self.sid} {self.identity!r}>"


# --- local side ------------------------------------------------------------------------------------------------------


class LocalTrackPublication:
    """A track this client publishes. ``sid`` is the server's id (None until acknowledged; renewed on reconnect)."""

    def __init__(self, participant: LocalParticipant, link: RoomLink, track: MediaStreamTrack, source: m.TrackSource,
                 name: str, *, owned: bool = False, format_target: Any = None) -> None:
        self.participant = participant
        self._link = link
        self.track = track
        self.kind: m.TrackKind = "video" if track.kind == "video" else "audio"
        self.source = source
        self.name = name
        self.cid = "TC_" + secrets.token_hex(6)
        self.sid: str | None = None
        self.video_format: tuple[int, int, float] | None = None
        self.bitrate = DEFAULT_VIDEO_BITRATE
        # What the server last asked of this video track (publish_constraints): scaled, thinned, capped or paused.
        self.constraints = Constraints()
        self._owned = owned
        self._format_target = format_target if format_target is not None else track
        self._muted_by_user = False
        self._muted_by_server = False
        self._sending_track: MediaStreamTrack | None = None
        self._encoder: Any = None
        self._sender: RTCRtpSender | None = None
        # Simulcast by two tracks (tvapp.client.renditions): a rendition's main publication, a main one's rendition.
        self.rendition_of: LocalTrackPublication | None = None
        self.layer: m.RenditionLayer | None = None
        self.low: LocalTrackPublication | None = None

    @property
    def owned(self) -> bool:
        """Return whether the SDK made this track's source (and so stops it)."""
        return self._owned

    @property
    def muted(self) -> bool:
        """Return whether the track is muted (by this client or by the server)."""
        return self._muted_by_user or self._muted_by_server

    @property
    def sending(self) -> bool:
        """Return whether frames of this track go out (not muted by anyone; a rendition: nor its main track)."""
        return not self.muted and (self.rendition_of is None or self.rendition_of.sending)

    async def mute(self) -> None:
        """Stop sending this track's frames and tell the room it is muted."""
        await self.set_muted(True)

    async def unmute(self) -> None:
        """Send this track's frames again and tell the room."""
        await self.set_muted(False)

    async def set_muted(self, muted: bool) -> None:
        """Mute or unmute this track (sends `mute` to the server; frames stop or resume at once)."""
        was_sending = self.sending
        self._muted_by_user = muted
        if self.sending and not was_sending:
            self.request_keyframe()
        if self.sid is not None:
            await self._link.request(m.Mute(track_sid=self.sid, muted=muted))

    def set_server_muted(self, muted: bool) -> None:
        """Apply a mute the server imposed (or lifted): frames stop or resume at once."""
        was_sending = self.sending
        self._muted_by_server = muted
        if self.sending and not was_sending:
            self.request_keyframe()

    def publish_message(self) -> m.Publish:
        """Return the message that (re)announces this track to the server, muted if its user muted it."""
        main = self.rendition_of
        return m.Publish(cid=self.cid, kind=self.kind, source=self.source, name=self.name, muted=self._muted_by_user,
                         rendition_of=None if main is None else main.sid, layer=self.layer)

    async def set_video_format(self, width: int, height: int, fps: float) -> None:
        """Send video at this size and frame rate (the source is asked to produce it; otherwise frames are scaled)."""
        if self.kind != "video":
            raise ValueError("set_video_format applies to video tracks")
        if width <= 0 or height <= 0 or width % 2 or height % 2 or fps <= 0:
            raise ValueError("width and height must be positive and even, fps positive")
        set_format = getattr(self._format_target, "set_format", None)
        if callable(set_format):
            set_format(width, height, fps)
        self.video_format = (width, height, float(fps))

    def set_max_bitrate(self, bps: int) -> None:
        """Aim the video encoder at `bps` bits per second."""
        if self.kind != "video":
            raise ValueError("set_max_bitrate applies to video tracks (aiortc sets the Opus rate)")
        from tvapp.client.encoder import MAX_BITRATE, MIN_BITRATE

        if not MIN_BITRATE <= bps <= MAX_BITRATE:
            raise ValueError(f"bitrate must be between {MIN_BITRATE} and {MAX_BITRATE} bps")
        self.bitrate = bps
        self._apply_bitrate()

    def apply_constraints(self, msg: m.PublishConstraints) -> None:
        """Obey the server's publish_constraints: scale frames into its box before encoding, thin them to its frame
        rate, cap the encoder's bitrate, send nothing while paused (a keyframe first when resuming)."""
        if self.kind != "video":
            return
        was_paused = self.constraints.paused
        self.constraints = Constraints(max_width=msg.max_width, max_height=msg.max_height,
                                       max_framerate=msg.max_framerate, max_bitrate=msg.max_bitrate,
                                       paused=msg.paused)
        self._apply_bitrate()
        if was_paused and not msg.paused:
            self.request_keyframe()

    def _apply_bitrate(self) -> None:
        from tvapp.client.encoder import MIN_BITRATE

        cap = self.constraints.max_bitrate
        if self._encoder is not None:
            self._encoder.set_bitrate(self.bitrate if cap is None else max(MIN_BITRATE, min(self.bitrate, cap)))

    def request_keyframe(self) -> None:
        """Make the next video packet a keyframe (no-op for audio)."""
        if self._encoder is not None:
            self._encoder.request_keyframe()
        if is_encoded(self.track):
            self.track.request_keyframe()  # type: ignore[attr-defined]

    def attach_sender(self, sender: RTCRtpSender) -> MediaStreamTrack:
        """Return the track to send on `sender` (a new chain per sender: a closed sender stops its track)."""
        if self._sender is sender and self._sending_track is not None and self._sending_track.readyState == "live":
            return self._sending_track
        self.detach_sender()
        feed = LocalFeed(self)
        sending: MediaStreamTrack = feed
        if is_encoded(self.track):
            sending = EncodedFeed(self)
            if self.kind == "video":
                internals.on_keyframe_request(sender, self.track.request_keyframe)  # type: ignore[attr-defined]
        elif self.kind == "video":
            from tvapp.client.encoder import EncodedVideoTrack, VideoEncoder

            width, height, fps = self.video_format or (640, 480, 30.0)
            self._encoder = VideoEncoder("vp8", width, height, fps, self.bitrate)
            self._apply_bitrate()
            sending = EncodedVideoTrack(feed, self._encoder)
            internals.on_keyframe_request(sender, self._encoder.request_keyframe)
        self._sender = sender
        self._sending_track = sending
        return sending

    def detach_sender(self) -> None:
        """Stop the chain that fed the current sender (its peer connection is gone); the source goes on."""
        if self._sending_track is not None:
            self._sending_track.stop()
        self._sending_track = None
        self._sender = None

    def stop(self) -> None:
        """Stop sending for good: the sender sends nothing, and a source the SDK made itself is stopped."""
        if self._sender is not None:
            self._sender.replaceTrack(None)
        self.detach_sender()
        if self._owned:
            self.track.stop()

    def __repr__(self) -> str:
        return f"<LocalTrackPublication {self.sid or self.cid} {self.kind}/{self.source}>"


class LocalParticipant:
    """This client in the room: publish and withdraw tracks, mute, preview the camera, send data."""

    def __init__(self, link: RoomLink) -> None:
        self._link = link
        self.sid = ""
        self.identity = ""
        self.name = ""
        self.network_quality: int | None = None  # this client's level as the SFU measures it (0..5)
        self.network_quality_info: m.NetworkQualityInfo | None = None
        self.grants: m.GrantsInfo | None = None
        self.publications: dict[str, LocalTrackPublication] = {}
        self._camera: MediaStreamTrack | None = None
        self._relay: MediaRelay | None = None
        self._previews: list[MediaStreamTrack] = []
        self._announced: set[str] = set()  # cids acknowledged at least once (a later ack is a rejoin's)
        self._sends: set[asyncio.Task[None]] = set()

    @property
    def tracks(self) -> dict[str, LocalTrackPublication]:
        """Return the acknowledged publications by track sid."""
        return {pub.sid: pub for pub in self.publications.values() if pub.sid is not None}

    async def publish_track(self, track: MediaStreamTrack, *, source: SourceName | None = None,
                            name: str = "", simulcast: bool = False) -> LocalTrackPublication:
        """Publish a local audio or video track; return its publication once the server acknowledged it (with
        `simulcast`, a video track's low rendition too: `publication.low`, tvapp.client.renditions)."""
        if track.kind not in ("audio", "video") or simulcast and track.kind != "video":
            raise ValueError("only audio and video tracks can be published, and only video with simulcast")
        if not simulcast:
            return await self._publish(track, _source(source, track.kind), name)
        relay = MediaRelay()  # one source, two encodes: each reads its own copy of the frames
        main = await self._publish(relay.subscribe(track, buffered=False), _source(source, "video"), name,
                                   format_target=track)
        await self.publish_rendition(main, relay.subscribe(track, buffered=False))
        return main

    async def publish_rendition(self, main: LocalTrackPublication, track: MediaStreamTrack) -> LocalTrackPublication:
        """Publish `track` (the same source as `main`, read separately) as `main`'s low rendition, 160x90@15."""
        await self._publish_announced(low := low_rendition(main, lambda: LocalTrackPublication(
            self, self._link, track, main.source, main.name, format_target=NoFormat())))
        return low

    async def _publish(self, track: MediaStreamTrack, source: m.TrackSource, name: str, *, owned: bool = False,
                       format_target: Any = None) -> LocalTrackPublication:
        pub = LocalTrackPublication(self, self._link, track, source, name, owned=owned, format_target=format_target)
        await self._publish_announced(pub)
        return pub

    async def _publish_announced(self, pub: LocalTrackPublication) -> None:
        self.publications[pub.cid] = pub
        try:
            await self._link.request(pub.publish_message())
            if pub.sid is None:
                raise RequestError("not_published", "the server did not acknowledge the track")
        except BaseException:
            self.publications.pop(pub.cid, None)
            if pub.rendition_of is not None:
                pub.rendition_of.low = None
            raise

    async def unpublish_track(self, publication: LocalTrackPublication) -> None:
        """Stop publishing a track (a source the SDK created itself is stopped too)."""
        forget(self.publications, publication)
        if self.publications.pop(publication.cid, None) is None:
            return
        sid = publication.sid
        publication.sid = None
        publication.stop()
        if sid is not None and self._link.connection_state != "disconnected":
            with contextlib.suppress(RequestError):  # already gone on the server (a reconnect raced us)
                await self._link.request(m.Unpublish(track_sid=sid))

    def publication(self, source: SourceName) -> LocalTrackPublication | None:
        """Return the first publication of a source (camera, microphone...), or None."""
        wanted = _source(source, "video")
        return next((p for p in self.publications.values() if p.source == wanted and p.rendition_of is None), None)

    async def set_microphone_enabled(self, enabled: bool, *, device: str | None = None) -> LocalTrackPublication | None:
        """Unmute the microphone track (publishing a tone, or `device`, on first use) or mute it."""
        pub = self.publication("microphone")
        if pub is None:
            if not enabled:
                return None
            from tvapp.client import sources

            track = sources.microphone_track(device) if device else sources.ToneTrack()
            return await self._publish(track, "microphone", "microphone", owned=True)
        await pub.set_muted(not enabled)
        return pub

    async def set_camera_enabled(self, enabled: bool, *, device: str | None = None,
                                 simulcast: bool = False) -> LocalTrackPublication | None:
        """Unmute the camera (publishing a test pattern or `device` first; `simulcast`: publish_track's) or mute."""
        pub = self.publication("camera")
        if pub is None:
            if not enabled:
                return None
            camera, relay = self._camera_source(device)
            pub = await self._publish(relay.subscribe(camera, buffered=False), "camera", "camera", owned=True,
                                      format_target=camera)
            if simulcast:
                await self.publish_rendition(pub, relay.subscribe(camera, buffered=False))
            return pub
        await pub.set_muted(not enabled)
        return pub

    def preview(self, *, width: int = 640, height: int = 480, fps: float = 30.0,
                device: str | None = None) -> MediaStreamTrack:
        """Return a local track showing the camera (the one published, or a new one) without publishing it."""
        camera, relay = self._camera_source(device, width, height, fps)
        view = relay.subscribe(camera, buffered=False)
        self._previews.append(view)
        return view

    def _camera_source(self, device: str | None, width: int = 640, height: int = 480,
                       fps: float = 30.0) -> tuple[MediaStreamTrack, MediaRelay]:
        if self._camera is None or self._camera.readyState != "live" or self._relay is None:
            from tvapp.client import sources

            if device:
                self._camera = sources.camera_track(device, width=width, height=height, fps=fps)
            else:
                self._camera = sources.TestPatternTrack(width=width, height=height, fps=fps)
            self._relay = MediaRelay()
        return self._camera, self._relay

    async def send_data(self, payload: str, topic: str = "", to: Iterable[str] = ()) -> None:
        """Send a data message to everyone else, or only to the participants with identities `to`."""
        if len(payload.encode("utf-8")) > m.MAX_DATA_BYTES:
            raise ValueError(f"a data message holds at most {m.MAX_DATA_BYTES} bytes of UTF-8")
        if self.grants is not None and not self.grants.publish_data:
            raise RequestError("not_allowed", "your token does not allow sending data")
        await self._link.send(m.SendData(payload=payload, topic=topic, to=tuple(to)))

    def rejoin_messages(self) -> list[m.Publish]:
        """Forget the server's track ids (a rejoin renews them); return the messages that publish every track again."""
        for pub in self.publications.values():
            pub.sid = None
        # A rendition names its main track's new sid: it is announced again when that track is acknowledged.
        return [pub.publish_message() for pub in self.publications.values() if pub.rendition_of is None]

    def acknowledge(self, cid: str, sid: str) -> None:
        """Note the server's id `sid` for the publication it knows by our `cid`."""
        pub = self.publications.get(cid)
        if pub is not None:
            if pub.sid != sid and pub.kind == "video":  # announced anew (a full rejoin): it starts unconstrained
                pub.apply_constraints(m.PublishConstraints(sid=sid, paused=pub.rendition_of is not None))
            pub.sid = sid
            if pub.low is not None and pub.low.sid is None and cid in self._announced:
                # A full rejoin: the rendition follows its main track, naming the new sid.
                task = asyncio.get_running_loop().create_task(self._link.send(pub.low.publish_message()))
                self._sends.add(task)
                task.add_done_callback(self._sends.discard)
            self._announced.add(cid)

    def stop_owned_sources(self) -> None:
        """Stop every sending chain and the sources the SDK made itself (the room has ended)."""
        for pub in self.publications.values():
            pub.detach_sender()
            if pub.owned:
                pub.track.stop()
        for view in self._previews:
            view.stop()
        self._previews.clear()
        if self._camera is not None:
            self._camera.stop()
            self._camera = None

    def __repr__(self) -> str:
        return f"<LocalParticipant {self.sid} {self.identity!r}>"


def _source(source: str | None, kind: str) -> m.TrackSource:
    if source is None:
        return "camera" if kind == "video" else "microphone"
    if source == "screen_share":
        return "screen"
    if source not in m.TRACK_SOURCES:
        raise ValueError(f"unknown source {source!r}")
    return source  # type: ignore[return-value]
