// A TypeScript page on the tvapp SDK, written against the documented API (README "Web SDK", tvapp.d.ts), checked by
// `tsc --noEmit --strict` in tests/js/types.test.js. It is compiled, never run: every line is there for its types.
// The @ts-expect-error lines must be errors: they prove the declarations are typed, not `any`.
import {
  Room, RemoteTrack, LocalTrackPublication, RemoteParticipant, VERSION, PROTOCOL_VERSION, encode, decode,
  tokenTimes, refreshDelay, createSyncedVideo, RoomClock, STATES, type ConnectionState, type PlaybackState,
  type RoomEvents, type ConnectOptions, flipChoice, mirrored, type FlipChoice, renditionEncoding, RENDITION,
} from "../../../tvapp/server/web/sdk/tvapp.js";

export async function join(coreUrl: string, accessToken: string, refreshToken: string): Promise<Room> {
  const options: ConnectOptions = { refreshToken, autoSubscribe: true, graceMs: 20_000 };
  const room = new Room(coreUrl, accessToken, options);
  room.on("connected", ({ participant }) => console.log("joined as", participant.identity));
  room.on("disconnected", ({ reason }) => console.log("left:", reason.toUpperCase()));
  room.on("reconnected", ({ reason, resumed }) => console.log(reason === "signal" ? "signal" : "media", resumed));
  room.on("participant_joined", ({ participant }) => console.log(participant.name, participant.tracks.size));
  room.on("track_subscribed", ({ track, participant }: RoomEvents["track_subscribed"]) => {
    const element: HTMLMediaElement = track.kind === "video"
      ? track.attach(document.createElement("video"))
      : track.attach(document.createElement("audio"));
    element.dataset.identity = participant ? participant.identity : "";
  });
  room.on("track_unsubscribed", ({ track }) => track.detach().forEach((el) => el.remove()));
  room.on("active_speakers", ({ speakers, dominantSid }) => console.log(speakers.map((s) => s.level), dominantSid));
  room.on("data", ({ payload, topic, identity }) => console.log(identity, topic, payload.length));
  room.on("playback_changed", ({ state }: { state: PlaybackState }) => console.log(state.position, state.playing));
  room.on("network_quality", ({ participant, level }) => console.log(participant.sid, level ?? "unknown"));
  room.on("local_track_changed", ({ publication }) => console.log(publication.sid, publication.track.label));
  room.on("token_refreshed", ({ expiresAt }) => console.log(new Date(expiresAt * 1000)));
  room.on("error", ({ code, message }) => console.warn(code, message));
  const off: () => void = room.on("track_muted", ({ track }) => console.log(track.sid, track.muted));
  off();
  await room.connect();
  const state: ConnectionState = room.state;
  console.log(state, room.name, room.sid, room.participants.size, STATES.includes(state));

  const camera: LocalTrackPublication | null = await room.localParticipant.setCameraEnabled(true);
  await room.localParticipant.setMicrophoneEnabled(true, { deviceId: "default" });
  await room.localParticipant.setScreenShareEnabled(false);
  await room.localParticipant.switchDevice("camera", "back");
  const flippedTo: LocalTrackPublication | null = await room.localParticipant.flipCamera();
  const choice: FlipChoice = flipChoice({ settings: { facingMode: "user" }, cameras: ["a", "b"] });
  console.log(flippedTo?.sid, choice.facingMode, choice.nextDeviceId, mirrored({ facingMode: "environment" }));
  const simulcast = await room.localParticipant.setCameraEnabled(true, { simulcast: true });
  const low: LocalTrackPublication | null = simulcast ? simulcast.low : null;
  const layer: "low" | null = low ? low.layer : null;
  const scale: number = renditionEncoding(1280, 720, null).scaleResolutionDownBy;
  console.log(low?.renditionOf?.sid, layer, scale, RENDITION.width);
  const sent: boolean = room.localParticipant.publishData("hello", { topic: "chat", to: ["bob"] });
  console.log(camera?.sid, sent);

  room.playback.load("/media/clip.mp4", { title: "Clip", position: 2, play: true });
  room.playback.pause();
  room.playback.seek(10);
  room.playback.backToLive();
  const live: boolean = room.playback.state?.live ?? false;
  const edge: number | null = room.playback.state?.live_edge ?? null;
  console.log(live, edge, room.playback.state?.delay, room.playback.state?.window, room.playback.state?.program_date_time);
  const synced = room.playback.attach(document.createElement("video"));
  console.log(synced.unplayable, room.playback.position());
  await room.refreshTokens();
  const report: RTCStatsReport = await room.getStats();
  console.log(report.size, room.stats.resumes, room.pc?.connectionState);
  room.subscribe("TR_x");
  await room.disconnect();

  const remote: RemoteParticipant | undefined = room.participants.get("PA_x");
  const track: RemoteTrack | null | undefined = remote?.tracks.get("TR_x")?.track;
  console.log(track?.mediaStreamTrack.id);

  // @ts-expect-error: no such event
  room.on("participant_arrived", () => undefined);
  // @ts-expect-error: a disconnected event's reason is a string, not a number
  room.on("disconnected", ({ reason }: { reason: number }) => reason);
  // @ts-expect-error: setCameraEnabled takes a boolean
  await room.localParticipant.setCameraEnabled("yes");
  // @ts-expect-error: Room.connect resolves with a Room, not a string
  const wrong: string = await Room.connect(coreUrl, accessToken);
  console.log(wrong);
  return room;
}

export function helpers(video: HTMLVideoElement, socket: WebSocket): void {
  const times = tokenTimes("a.b.c");
  if (times) console.log(refreshDelay(times.issuedAt, times.expiresAt, Date.now() / 1000));
  const text: string = encode("ping", { t0: 1 });
  console.log(decode(text).type, VERSION, PROTOCOL_VERSION === 1);
  const clock = new RoomClock();
  const synced = createSyncedVideo(video, { send: (msg) => socket.send(JSON.stringify(msg)), clock: () => clock });
  synced.tick();
}
