// tvapp SDK: the signaling codec (protocol v1). Every message is a JSON object with "type" and "v": 1; field names
// are snake_case; unknown extra fields are ignored. `encode` builds and checks what the client sends, `decode`
// checks what the server sends (required fields and JSON types; the server checks lengths and ranges). The examples
// both SDKs are tested against are tests/fixtures/signaling/messages.json.

export const PROTOCOL_VERSION = 1;
export const MAX_MESSAGE_BYTES = 65536;

export class ProtocolError extends Error {
  constructor(message) {
    super(message);
    this.name = "ProtocolError";
    this.code = "bad_message";
  }
}

// Field rules: "s" string, "n" number, "i" integer, "b" boolean, "o" object, "a" array; a trailing "?" means
// optional, "?!" optional and nullable. Each message lists its fields.
const S = "s", N = "n", I = "i", B = "b", O = "o", A = "a";
const opt = (rule) => rule + "?";
const nul = (rule) => rule + "?!";

export const CLIENT_MESSAGES = Object.freeze({
  join: { token: S, auto_subscribe: opt(B), resume_token: nul(S) },
  offer: { sdp: S, transceivers: opt(A), generation: opt(I) },
  answer: { sdp: S },
  candidate: { candidate: S, sdp_mid: nul(S), sdp_mline_index: nul(I) },
  publish: { cid: S, kind: S, source: S, name: opt(S), muted: opt(B), rendition_of: nul(S), layer: nul(S) },
  unpublish: { track_sid: S },
  subscribe: { track_sid: S },
  unsubscribe: { track_sid: S },
  mute: { track_sid: S, muted: B },
  leave: {},
  ping: { t0: nul(N), id: nul(S) },
  send_data: { payload: S, topic: opt(S), to: opt(A) },
  playback: {
    action: S, content: nul(S), title: opt(S), position: nul(N), play: opt(B), control: nul(S), on_stall: nul(S),
  },
  buffering: { stalled: B, position: nul(N), duration: nul(N) },
  media_restart: { generation: I },
  track_settings: { sid: S, width: I, height: I, visible: opt(B), priority: opt(S) },
});

export const SERVER_MESSAGES = Object.freeze({
  joined: {
    room: O, participant: O, grants: O, participants: opt(A), server_time: N, ping_interval: N, idle_timeout: N,
    ice_servers: opt(A), resume_token: nul(S), resumed: opt(B),
  },
  participant_joined: { participant: O },
  participant_left: { participant_sid: S, identity: S, reason: opt(S) },
  participant_reconnecting: { participant_sid: S, identity: S, cause: opt(S) },
  participant_reconnected: { participant_sid: S, identity: S },
  track_published: { participant_sid: S, track: O, cid: nul(S) },
  track_unpublished: { participant_sid: S, track_sid: S },
  track_muted: { participant_sid: S, track_sid: S, by_server: opt(B) },
  track_unmuted: { participant_sid: S, track_sid: S, by_server: opt(B) },
  removed: { reason: opt(S) },
  room_completed: { room_sid: S },
  error: { code: S, message: opt(S) },
  pong: { t0: nul(N), t1: N, t2: N, id: nul(S) },
  active_speakers: { speakers: opt(A), dominant_sid: nul(S) },
  network_quality: { levels: opt(A) },
  track_switched_off: { sid: S, reason: S },
  track_switched_on: { sid: S },
  publish_constraints: {
    sid: S, max_width: nul(I), max_height: nul(I), max_framerate: nul(I), max_bitrate: nul(I), paused: opt(B),
  },
  unmute_request: { track_sid: S },
  data: { from_sid: S, from_identity: S, topic: opt(S), payload: S },
  playback_state: {
    content: opt(S), title: opt(S), playing: opt(B), position: opt(N), rate: opt(N), at: opt(N), seq: opt(I),
    waiting_for: opt(A), control: opt(S), on_stall: opt(S), duration: nul(N), server_time: N,
  },
  offer: { sdp: S, transceivers: opt(A), generation: opt(I) },
  answer: { sdp: S },
  candidate: { candidate: S, sdp_mid: nul(S), sdp_mline_index: nul(I) },
});

// Records inside messages, checked the same way.
const RECORDS = Object.freeze({
  track: { sid: S, kind: S, source: S, name: opt(S), muted: opt(B), renditions: opt(A), rendition_of: nul(S), layer: nul(S) },
  participant: { sid: S, identity: S, name: opt(S), joined_at: N, tracks: opt(A), reconnecting: opt(B) },
  room: { sid: S, name: S, status: S, max_participants: I },
  transceiver: { mid: S, direction: S, track_sid: S, participant_sid: S, kind: S, cid: nul(S) },
  speaker: { participant_sid: S, identity: S, level: N },
  quality: { participant_sid: S, level: nul(I), uplink: nul(O), downlink: nul(O) },
});
const NESTED = {
  joined: { participant: "participant", participants: "participant", room: "room" },
  participant_joined: { participant: "participant" },
  track_published: { track: "track" },
  offer: { transceivers: "transceiver" },
  active_speakers: { speakers: "speaker" },
  network_quality: { levels: "quality" },
};

function typeOk(rule, value) {
  switch (rule) {
    case S: return typeof value === "string";
    case N: return typeof value === "number" && Number.isFinite(value);
    case I: return Number.isInteger(value);
    case B: return typeof value === "boolean";
    case O: return value !== null && typeof value === "object" && !Array.isArray(value);
    case A: return Array.isArray(value);
    default: return false;
  }
}

function check(where, rules, obj) {
  for (const [name, full] of Object.entries(rules)) {
    const rule = full[0];
    const value = obj[name];
    if (value === undefined) {
      if (full.length === 1) throw new ProtocolError(`${where}.${name}: required`);
      continue;
    }
    if (value === null && full.endsWith("!")) continue;
    if (!typeOk(rule, value)) throw new ProtocolError(`${where}.${name}: wrong type`);
  }
}

function checkNested(type, obj) {
  const nested = NESTED[type] || {};
  for (const [name, record] of Object.entries(nested)) {
    const value = obj[name];
    const items = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
    items.forEach((item, i) => {
      if (!typeOk(O, item)) throw new ProtocolError(`${type}.${name}[${i}]: expected an object`);
      check(`${type}.${name}`, RECORDS[record], item);
      if (record === "participant") for (const t of item.tracks || []) check(`${type}.${name}.tracks`, RECORDS.track, t);
    });
  }
}

/** Return the JSON text of a client message of `type` with `fields` ("v" added); throw ProtocolError if bad. */
export function encode(type, fields = {}) {
  const rules = CLIENT_MESSAGES[type];
  if (!rules) throw new ProtocolError(`message.type: unknown type ${JSON.stringify(String(type).slice(0, 32))}`);
  const message = { type, ...fields, v: PROTOCOL_VERSION };
  check(type, rules, message);
  return JSON.stringify(message);
}

/** Return the server message in a received text (checked); throw ProtocolError if it is not one. */
export function decode(text) {
  if (typeof text !== "string") throw new ProtocolError("message: expected text");
  if (text.length > MAX_MESSAGE_BYTES) throw new ProtocolError("message: too big");
  let obj;
  try {
    obj = JSON.parse(text);
  } catch (err) {
    throw new ProtocolError("message: not JSON");
  }
  return parseServerMessage(obj);
}

/** Return `obj` if it is a valid server message; throw ProtocolError naming the bad field. */
export function parseServerMessage(obj) {
  if (!typeOk(O, obj)) throw new ProtocolError("message: expected an object");
  if (!Number.isInteger(obj.v)) throw new ProtocolError("message.v: required");
  if (obj.v !== PROTOCOL_VERSION) throw Object.assign(new ProtocolError("message.v: unsupported"),
    { code: "unsupported_version" });
  const rules = SERVER_MESSAGES[obj.type];
  if (!rules) throw Object.assign(new ProtocolError("message.type: unknown"), { code: "unknown_type" });
  check(obj.type, rules, obj);
  checkNested(obj.type, obj);
  return obj;
}
