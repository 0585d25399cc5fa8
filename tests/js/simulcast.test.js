// Simulcast by two tracks in tvapp.js (sdk/simulcast.js): the low rendition's encoding from the camera's size and the
// server's constraints, and how the Room announces it (rendition_of its camera's sid, layer "low"; after the camera
// is acknowledged, again after a full rejoin, never twice) against a scripted server (a fake WebSocket). Chromium
// publishes it to a real core in tests/test_web_simulcast.py.
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";

class FakeSocket {
  static all = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.all.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.onopen && this.onopen();
    }, 0);
  }

  send(text) {
    this.sent.push(JSON.parse(text));
  }

  close() {
    if (this.readyState === 3) return;
    this.readyState = 3;
    setTimeout(() => this.onclose && this.onclose({ code: 1000 }), 0);
  }

  reply(msg) {
    this.onmessage({ data: JSON.stringify({ ...msg, v: 1 }) });
  }
}

class FakePc {
  close() {}
  getTransceivers() {
    return [];
  }
}

class FakeTrack {
  constructor(width, height) {
    Object.assign(this, { kind: "video", enabled: true, width, height, stopped: false });
  }
  clone() {
    const copy = new FakeTrack(this.width, this.height);
    copy.enabled = this.enabled;
    return copy;
  }
  stop() {
    this.stopped = true;
  }
  getSettings() {
    return { width: this.width, height: this.height };
  }
}

globalThis.WebSocket = FakeSocket;
globalThis.RTCPeerConnection = FakePc;
const { Room, RENDITION, renditionScale, renditionEncoding } = await import("../../tvapp/server/web/sdk/tvapp.js");

const ROOM = { sid: "RM_1", name: "r", status: "active", max_participants: 10 };
const GRANTS = { room: "r", join: true, publish: true, subscribe: true, publish_data: true, host: false, hidden: false };
const joined = (sid) => ({ type: "joined", room: ROOM, grants: GRANTS, resumed: false, resume_token: "r1",
  participant: { sid, identity: "me", joined_at: 1, tracks: [] }, participants: [], server_time: 1,
  ping_interval: 10, idle_timeout: 30 });
const published = (participantSid, cid, sid, extra = {}) => ({ type: "track_published", participant_sid: participantSid,
  cid, track: { sid, kind: "video", source: "camera", name: "", muted: false, ...extra } });

async function until(check, ms = 3000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const rooms = [];
afterEach(async () => {
  for (const room of rooms.splice(0)) await room.disconnect();
});

async function socketJoined(n) {
  await until(() => FakeSocket.all.length >= n && FakeSocket.all[n - 1].sent.some((m) => m.type === "join"));
  return FakeSocket.all[n - 1];
}

const publishes = (socket) => socket.sent.filter((m) => m.type === "publish");

test("the rendition has the pixels of 160x90 whatever the camera's shape, never scaled up", () => {
  assert.equal(renditionScale(1280, 720), 8);
  assert.equal(renditionScale(320, 180), 2);
  assert.equal(renditionScale(640, 480), 4.62); // 138x104
  assert.equal(renditionScale(480, 640), 4.62); // a phone held upright: the same pixels, not 67x90
  assert.equal(renditionScale(160, 90), 1);
  assert.equal(renditionScale(100, 50), 1);
  assert.equal(renditionScale(0, 0), 1); // size unknown yet
  assert.deepEqual(RENDITION, { width: 160, height: 90, framerate: 15, bitrate: 100_000, layer: "low" });
});

test("the rendition's encoding starts paused and obeys the server, never above 160x90@15 and 100 kb/s", () => {
  assert.deepEqual(renditionEncoding(1280, 720), { active: false, scaleResolutionDownBy: 8, maxFramerate: 15,
    maxBitrate: 100_000 });
  const free = { max_width: null, max_height: null, max_framerate: null, max_bitrate: null, paused: false };
  assert.deepEqual(renditionEncoding(1280, 720, free), { active: true, scaleResolutionDownBy: 8, maxFramerate: 15,
    maxBitrate: 100_000 });
  assert.equal(renditionEncoding(1280, 720, free, false).active, false); // its camera muted
  const less = { max_width: 80, max_height: 45, max_framerate: 30, max_bitrate: 60_000, paused: false };
  assert.deepEqual(renditionEncoding(1280, 720, less), { active: true, scaleResolutionDownBy: 16, maxFramerate: 15,
    maxBitrate: 60_000 });
  assert.equal(renditionEncoding(1280, 720, { ...free, max_framerate: 10 }).maxFramerate, 10);
});

test("a simulcast camera announces its rendition once the camera has a sid, and again after a full rejoin", async () => {
  const room = new Room("http://core:8800", "ACCESS");
  rooms.push(room);
  const joining = room.connect();
  (await socketJoined(1)).reply(joined("PA_1"));
  await joining;
  const socket = FakeSocket.all[0];
  const track = new FakeTrack(1280, 720);
  const camera = await room.localParticipant.setCameraEnabled(true, { track, simulcast: true });
  const low = camera.low;
  assert.ok(low && low.renditionOf === camera && low.layer === "low");
  assert.notEqual(low.track, track); // a clone on a sender of its own
  assert.deepEqual([...room.localParticipant.tracks.keys()], ["camera"]); // the room sees one track
  assert.deepEqual(publishes(socket).map((m) => m.cid), ["camera"]); // no sid to name yet

  socket.reply(published("PA_1", "camera", "TR_cam"));
  assert.deepEqual(publishes(socket).at(-1), { type: "publish", cid: "camera/low", kind: "video", source: "camera",
    name: "", muted: false, rendition_of: "TR_cam", layer: "low", v: 1 });
  socket.reply(published("PA_1", "camera/low", "TR_low", { rendition_of: "TR_cam", layer: "low" }));
  assert.equal(low.sid, "TR_low");
  assert.equal(low.constraints.paused, true);
  socket.reply({ type: "publish_constraints", sid: "TR_low", max_width: null, max_height: null,
    max_framerate: null, max_bitrate: null, paused: false });
  assert.equal(low.constraints.paused, false); // kept for its sender (applied when it has one)
  assert.equal(camera.constraints, null);

  // Muting the camera mutes its rendition's frames; an extra track_published of the camera announces nothing new.
  room.localParticipant.setCameraEnabled(false);
  await until(() => low.track.enabled === false);
  socket.reply(published("PA_1", "camera", "TR_cam"));
  assert.equal(publishes(socket).length, 2);
  await room.localParticipant.setCameraEnabled(true);
  assert.equal(low.track.enabled, true);

  // A full rejoin: new sids; the camera first, the rendition once it names the camera's new sid (paused again).
  socket.close();
  const second = await socketJoined(2);
  second.reply(joined("PA_2"));
  await until(() => room.state === "connected");
  assert.equal(low.sid, null);
  assert.deepEqual(publishes(second).map((m) => m.cid), ["camera"]);
  second.reply(published("PA_2", "camera", "TR_cam2"));
  assert.deepEqual(publishes(second).map((m) => [m.cid, m.rendition_of ?? null]), [["camera", null],
    ["camera/low", "TR_cam2"]]);
  second.reply(published("PA_2", "camera/low", "TR_low2", { rendition_of: "TR_cam2", layer: "low" }));
  assert.equal(low.sid, "TR_low2");
  assert.equal(low.constraints.paused, true);

  // Unpublishing the camera stops the rendition too (the server drops it with its camera).
  room.localParticipant._unpublish(camera);
  assert.equal(low.track.stopped, true);
  assert.equal(camera.low, null);
  assert.deepEqual(second.sent.filter((m) => m.type === "unpublish").map((m) => m.track_sid), ["TR_cam2"]);
});

test("a device switch moves the rendition to a clone of the new camera track, same sids", async () => {
  const room = new Room("http://core:8800", "ACCESS");
  rooms.push(room);
  const n = FakeSocket.all.length + 1;
  const joining = room.connect();
  const socket = await socketJoined(n);
  socket.reply(joined("PA_1"));
  await joining;
  const next = new FakeTrack(640, 480);
  globalThis.navigator = { mediaDevices: { getUserMedia: async () => ({ getTracks: () => [next] }) } };
  const camera = await room.localParticipant.setCameraEnabled(true, { track: new FakeTrack(1280, 720),
    simulcast: true });
  socket.reply(published("PA_1", "camera", "TR_cam"));
  socket.reply(published("PA_1", "camera/low", "TR_low", { rendition_of: "TR_cam", layer: "low" }));
  const low = camera.low;
  const before = low.track;
  room.localParticipant._setMuted(camera, true);
  await room.localParticipant.switchDevice("camera", "other");
  assert.equal(camera.track, next);
  assert.equal(before.stopped, true);
  assert.notEqual(low.track, next);
  assert.deepEqual([low.track.width, low.track.height, low.track.stopped], [640, 480, false]);
  assert.equal(low.track.enabled, false); // still muted with its camera
  assert.deepEqual([camera.sid, low.sid, camera.low], ["TR_cam", "TR_low", low]);
  assert.equal(publishes(socket).length, 2); // nothing announced again
});
