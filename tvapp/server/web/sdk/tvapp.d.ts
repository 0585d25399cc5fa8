// Type declarations of the tvapp JavaScript SDK (tvapp.js).

export declare const VERSION: string;
export declare const PROTOCOL_VERSION: 1;

export type ConnectionState = "idle" | "connecting" | "connected" | "reconnecting" | "disconnected";
export type TrackKind = "audio" | "video";
export type TrackSource = "camera" | "microphone" | "screen" | "screen_audio" | "content" | "unknown";

export interface ConnectOptions {
  /** Trade it for a new access token before expiry (POST /v1/tokens/refresh); it rotates. */
  refreshToken?: string | null;
  /** Receive every track published (default true). */
  autoSubscribe?: boolean;
  /** Resume the same participant within this long after a drop (the server's [signal] reconnect_grace; 20000). */
  graceMs?: number;
  /** Join afresh until this long after a drop, then give up with disconnected("reconnect_failed") (120000). */
  giveUpMs?: number;
  /** Nothing heard from the server this long means the socket is dead (3500). */
  silenceMs?: number;
  /** ICE "disconnected" this long means the media path is dead: media_restart (2000). */
  mediaDeadMs?: number;
  joinTimeoutMs?: number;
}

export declare class Emitter<Events extends object = Record<string, unknown>> {
  on<K extends keyof Events & string>(name: K, fn: (event: Events[K]) => void): () => void;
  off<K extends keyof Events & string>(name: K, fn: (event: Events[K]) => void): void;
  once<K extends keyof Events & string>(name: K, predicate?: (event: Events[K]) => boolean,
    timeoutMs?: number): Promise<Events[K]>;
  emit<K extends keyof Events & string>(name: K, event: Events[K]): number;
  listenerCount(name: string): number;
}

export declare class RemoteTrack {
  readonly sid: string;
  readonly kind: TrackKind;
  readonly mediaStreamTrack: MediaStreamTrack;
  readonly mid: string;
  readonly participantSid: string;
  /** Adaptive stream: a video track attached to elements tells the server their size and visibility (size the
   * element by CSS: one sized by its own picture would follow the picture down). */
  attach<E extends HTMLMediaElement>(element?: E): E;
  detach(element?: HTMLMediaElement): HTMLMediaElement[];
  /** Tell the server how this video track is shown, by hand (the elements are no longer watched). */
  setSettings(settings: TrackSettings): void;
  priority: TrackPriority;
}

export type TrackPriority = "low" | "standard" | "high";

/** How a subscriber shows a video track (track_settings); 0 x 0: size unknown. */
export interface TrackSettings {
  width?: number;
  height?: number;
  visible?: boolean;
  priority?: TrackPriority;
}

/** What the server asks of one of this page's video tracks (publish_constraints); null: no limit. */
export interface PublishConstraints {
  sid: string;
  max_width: number | null;
  max_height: number | null;
  max_framerate: number | null;
  max_bitrate: number | null;
  paused: boolean;
}

export declare class RemoteTrackPublication {
  readonly sid: string;
  readonly kind: TrackKind;
  readonly source: TrackSource;
  readonly name: string;
  readonly muted: boolean;
  readonly track: RemoteTrack | null;
  /** The reason while the SFU does not send this video track to this page (track_switched_off), else null. */
  readonly switchedOff: string | null;
}

export declare class RemoteParticipant {
  readonly sid: string;
  readonly identity: string;
  readonly name: string;
  readonly reconnecting: boolean;
  /** The network quality level 0 (broken) .. 5 (excellent) the SFU last announced; null when unknown. */
  readonly networkQuality: number | null;
  readonly tracks: Map<string, RemoteTrackPublication>;
}

export declare class LocalTrackPublication {
  readonly cid: string;
  readonly kind: TrackKind;
  readonly source: TrackSource;
  readonly track: MediaStreamTrack;
  readonly sid: string | null;
  readonly muted: boolean;
  /** The server's last publish_constraints for this video track, applied to its RTCRtpSender. */
  readonly constraints: PublishConstraints | null;
  /** Simulcast by two tracks: the camera's low rendition (setCameraEnabled's `simulcast`), else null. It is not in
   * `localParticipant.tracks` (the room sees one track); its own sender, sid and constraints (paused unless needed). */
  readonly low: LocalTrackPublication | null;
  /** For a low rendition: the camera publication it renders, and its layer; else null. */
  readonly renditionOf: LocalTrackPublication | null;
  readonly layer: "low" | null;
}

/** The low rendition's target (simulcast by two tracks): 160x90 worth of pixels, 15 fps, 100 kb/s. */
export declare const RENDITION: Readonly<{ width: 160; height: 90; framerate: 15; bitrate: 100000; layer: "low" }>;
/** The factor that brings a width x height source down to the rendition's pixel count (never below 1). */
export declare function renditionScale(width: number, height: number): number;
/** The rendition's RTCRtpEncodingParameters for a source size under the server's constraints (default: paused). */
export declare function renditionEncoding(width: number, height: number, constraints?: PublishConstraints |
  Omit<PublishConstraints, "sid"> | null, sending?: boolean): { active: boolean; scaleResolutionDownBy: number;
  maxFramerate: number; maxBitrate: number };

export declare class LocalParticipant {
  readonly sid: string | null;
  readonly identity: string | null;
  readonly name: string;
  readonly tracks: Map<string, LocalTrackPublication>;
  /** This page's network quality level 0 (broken) .. 5 (excellent) as the SFU announces it; null when unknown. */
  readonly networkQuality: number | null;
  /** `options.track`: publish this MediaStreamTrack (e.g. a preview's) instead of opening the device again.
   * `options.simulcast`: also send a low rendition (160x90@15 on a second sender; `publication.low`), which the SFU
   * keeps paused unless a subscriber's link cannot carry the camera (about +20 % uplink only then). */
  setCameraEnabled(enabled: boolean, options?: { deviceId?: string; track?: MediaStreamTrack; simulcast?: boolean }):
    Promise<LocalTrackPublication | null>;
  /** `options.track`: publish this MediaStreamTrack (e.g. a preview's) instead of opening the device again. */
  setMicrophoneEnabled(enabled: boolean, options?: { deviceId?: string; track?: MediaStreamTrack }): Promise<LocalTrackPublication | null>;
  setScreenShareEnabled(enabled: boolean): Promise<LocalTrackPublication | null>;
  switchDevice(kind: "camera" | "microphone" | TrackKind, deviceId: string): Promise<LocalTrackPublication | null>;
  /** Flip the camera: the other facingMode (user <-> environment) where the track tells one, else the next camera;
   * the publication keeps its sid. null when no camera is published. A phone that cannot open two cameras at once
   * (NotReadableError) gets the current track stopped first; on failure the camera it left is opened again. */
  flipCamera(): Promise<LocalTrackPublication | null>;
  publishData(payload: string, options?: { topic?: string; to?: string[] }): boolean;
}

export interface PlaybackState {
  content: string;
  title: string;
  playing: boolean;
  position: number;
  rate: number;
  at: number;
  seq: number;
  waiting_for: string[];
  control: "host" | "everyone";
  on_stall: "pause" | "continue";
  duration: number | null;
  /** A live stream: position and live_edge are instants of the event (program date-time), not offsets. */
  live: boolean;
  /** The live edge's instant at `at` (null unless live). */
  live_edge: number | null;
  /** How far behind the live edge the room plays (seconds). */
  delay: number;
  /** How far back the playlist lets the room pause or seek (seconds). */
  window: number;
  /** false: the stream has no program date-time; instants come from media sequence x target duration. */
  program_date_time: boolean;
  server_time: number;
}

export declare class RoomClock {
  constructor(now?: () => number);
  offset: number | null;
  delay: number | null;
  exchanges: number;
  stamp(): number;
  nextPingMs(): number;
  pong(msg: { t0: number | null; t1: number; t2: number }, t3?: number): boolean;
  serverNow(): number | null;
  localTimeOf(serverTime: number): number | null;
}

/** A <video> kept on the room's timeline (room.playback.attach(video), or createSyncedVideo for your own socket). */
export interface SyncedVideo {
  readonly video: HTMLVideoElement;
  readonly state: PlaybackState | null;
  readonly src: string | null;
  /** "tv" (a path on the TV's disk) or "error" (this browser cannot play it), else null. */
  readonly unplayable: "tv" | "error" | null;
  /** Autoplay with sound was refused: call unmute() from a user gesture. */
  readonly soundBlocked: boolean;
  readonly lastTarget: number | null;
  readonly lastError: number | null;
  readonly seeks: number;
  joined(msg: { grants?: { host?: boolean }; ping_interval?: number }): void;
  handle(msg: { type: string }): boolean;
  tick(): void;
  left(): void;
  unmute(): void;
  detach(): void;
  serverNow(): number | null;
}
export declare function createSyncedVideo(video: HTMLVideoElement, options: {
  send: (message: { type: string } & Record<string, unknown>) => unknown;
  clock?: () => RoomClock;
  base?: string;
  onChange?: () => void;
  /** Live streams: the hls.js class to use (default: the core's vendored copy, /static/vendor/hls.light.min.mjs). */
  hls?: unknown;
  /** Live streams: where to import hls.js from instead (an ES module whose default export is Hls). */
  hlsUrl?: string;
}): SyncedVideo;

export declare class Playback {
  readonly state: PlaybackState | null;
  load(content: string, options?: { title?: string; position?: number; play?: boolean }): boolean;
  play(): boolean;
  pause(): boolean;
  seek(position: number): boolean;
  /** A live stream: back to the room's live point (the "live" action; nothing loaded: error no_content). */
  backToLive(): boolean;
  stop(): boolean;
  position(): number | null;
  attach(video: HTMLVideoElement): SyncedVideo;
}

/** One direction of a participant's link as the SFU measures it. */
export interface LinkQuality { level: number | null; loss: number | null; jitter_ms: number | null; rtt_ms: number | null }

export interface SpeakerInfo {
  participant_sid: string;
  identity: string;
  level: number;
  participant: RemoteParticipant | null;
}

export interface RoomEvents {
  connected: { room: Room; participant: LocalParticipant };
  /** reason: client_initiated, removed, room_completed, replaced, token_revoked, reconnect_failed, ... */
  disconnected: { reason: string };
  reconnecting: { reason: "signal" | "media"; code?: number; cause?: string };
  /** resumed: the same participant carried on (false after a full rejoin: new sids). */
  reconnected: { reason: "signal" | "media"; resumed: boolean };
  participant_joined: { participant: RemoteParticipant };
  participant_left: { participant: RemoteParticipant; reason: string };
  participant_reconnecting: { participant: RemoteParticipant; cause: string };
  participant_reconnected: { participant: RemoteParticipant; cause: string };
  track_published: { track: RemoteTrackPublication; participant: RemoteParticipant };
  track_unpublished: { track: RemoteTrackPublication; participant: RemoteParticipant };
  track_subscribed: { track: RemoteTrack; publication: RemoteTrackPublication | null;
    participant: RemoteParticipant | null };
  track_unsubscribed: { track: RemoteTrack; publication: RemoteTrackPublication | null;
    participant: RemoteParticipant | null };
  track_muted: { track: RemoteTrackPublication; participant: RemoteParticipant };
  track_unmuted: { track: RemoteTrackPublication; participant: RemoteParticipant };
  active_speakers: { speakers: SpeakerInfo[]; dominantSid: string | null };
  /** A participant's network quality level changed (0 broken .. 5 excellent, null unknown; Twilio's scale). */
  network_quality: { participant: RemoteParticipant | LocalParticipant; level: number | null; previous: number | null;
    uplink: LinkQuality | null; downlink: LinkQuality | null };
  /** The SFU stopped sending this page a video track (reason "congestion": the downlink cannot carry everything). */
  track_switched_off: { track: RemoteTrackPublication; participant: RemoteParticipant; reason: string };
  /** The SFU sends a switched-off video track again (from a keyframe). */
  track_switched_on: { track: RemoteTrackPublication; participant: RemoteParticipant; reason: string };
  /** The server asks to unmute one of your tracks (a room-session action); accept with setMicrophoneEnabled(true). */
  unmute_requested: { trackSid: string };
  data: { payload: string; topic: string; participant: RemoteParticipant | null; identity: string };
  playback_changed: { state: PlaybackState };
  error: { code: string; message: string };
  local_track_published: { publication: LocalTrackPublication };
  local_track_unpublished: { publication: LocalTrackPublication };
  /** switchDevice put another camera or microphone into the publication (same sid, new MediaStreamTrack). */
  local_track_changed: { publication: LocalTrackPublication };
  /** The server's publish_constraints were applied to one of your video tracks' sender. */
  publish_constraints: { publication: LocalTrackPublication; constraints: PublishConstraints };
  token_refreshed: { expiresAt: number };
  /** Every server message as it came, after the room applied it (a page may keep its own views of some). */
  message: Record<string, unknown> & { type: string; v: 1 };
}

export declare class Room extends Emitter<RoomEvents> {
  static connect(url: string, token: string, options?: ConnectOptions): Promise<Room>;
  /** Make a room without joining: add listeners, then `await room.connect()`. */
  constructor(url: string, token: string, options?: ConnectOptions);
  connect(): Promise<void>;
  readonly state: ConnectionState;
  readonly name: string | null;
  readonly sid: string | null;
  readonly participants: Map<string, RemoteParticipant>;
  readonly localParticipant: LocalParticipant;
  readonly playback: Playback;
  readonly clock: RoomClock;
  readonly activeSpeakers: SpeakerInfo[];
  readonly pc: RTCPeerConnection | null;
  /** How many media restarts this session made (offers of older peer connections are ignored). */
  readonly generation: number;
  readonly accessToken: string;
  readonly refreshToken: string | null;
  readonly stats: { offersAnswered: number; resumes: number; rejoins: number; mediaRestarts: number;
    lastMediaRestart?: string };
  disconnect(): Promise<void>;
  subscribe(trackSid: string): boolean;
  unsubscribe(trackSid: string): boolean;
  /** Replace the peer connection now; `cause` is kept in stats.lastMediaRestart and the reconnecting event. */
  restartMedia(cause?: string): void;
  refreshTokens(): Promise<void>;
  getStats(): Promise<RTCStatsReport>;
}

export declare class ProtocolError extends Error {
  code: string;
}
export declare function encode(type: string, fields?: Record<string, unknown>): string;
export declare function decode(text: string): Record<string, unknown> & { type: string; v: 1 };
export declare function parseServerMessage(obj: unknown): Record<string, unknown> & { type: string; v: 1 };
export declare const CLIENT_MESSAGES: Readonly<Record<string, Record<string, string>>>;
export declare const SERVER_MESSAGES: Readonly<Record<string, Record<string, string>>>;

export declare const STATES: readonly ConnectionState[];
export declare function nextState(state: ConnectionState, event: string): ConnectionState;
export declare function canTransition(state: ConnectionState, event: string): boolean;
export declare function reconnectStep(p: { since: number; now: number; resumeToken: string | null;
  refused: boolean; graceMs: number; giveUpMs: number }): "resume" | "rejoin" | "give_up";
export declare function retryDelayMs(attempt: number): number;

/** A camera's facing mode as MediaTrackSettings names it ("user": front, "environment": back). */
export type FacingMode = "user" | "environment" | "left" | "right" | string;
export interface FlipChoice {
  /** The facing mode a flip asks for; null when the track tells none (then only nextDeviceId). */
  facingMode: FacingMode | null;
  /** The facingMode constraints to try in order: exact, then ideal. */
  tries: Array<{ exact: FacingMode } | { ideal: FacingMode }>;
  /** The camera after the current one in the device list (wrapping round); null when there is no other. */
  nextDeviceId: string | null;
}
export declare function otherFacing(mode: FacingMode | null | undefined): FacingMode;
export declare function facingOf(settings?: MediaTrackSettings | null,
  capabilities?: MediaTrackCapabilities | null): FacingMode | null;
export declare function flipChoice(p?: { settings?: MediaTrackSettings; capabilities?: MediaTrackCapabilities;
  cameras?: string[] }): FlipChoice;
export declare function flipped(before: MediaTrackSettings | null, after: MediaTrackSettings | null,
  wanted: FacingMode | null): boolean;
export declare function mirrored(settings?: MediaTrackSettings | null,
  capabilities?: MediaTrackCapabilities | null): boolean;

export declare function tokenTimes(token: string): { issuedAt: number; expiresAt: number } | null;
export declare function refreshDelay(issuedAt: number, expiresAt: number, now: number): number;
export declare function tokenExpired(token: string, now: number): boolean;

export declare function moving(state: PlaybackState | null): boolean;
export declare function positionAt(state: PlaybackState, serverTime: number): number;
export declare function steer(error: number, correcting: boolean):
  { action: "seek" | "rate"; rate: number; correcting: boolean };
export declare function median(values: number[]): number;
export declare function learnFrame(frameS: number | null, step: number | null): number | null;
export declare function frameError(state: PlaybackState, mediaTime: number, frameS: number,
  displayServerTime: number): number;
export declare function measuredError(presented: number[], currentTime: number, target: number,
  paused: boolean): number;
export declare function playableUrl(content: string, base?: string): string | null;
