// The Room's connection life against a scripted server (a fake WebSocket: node has none, and these are the SDK's
// decisions, not the network's): join, resume after a drop with the same peer connection, a full rejoin when the
// resume is refused, giving up, leaving. Chromium does the same against a real core in tests/test_web_sdk.py.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";

class FakeSocket {
  static all = [];
  static refuse = false;

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.all.push(this);
    setTimeout(() => {
      if (FakeSocket.refuse) return this.drop(1006);
      this.readyState = 1;
      this.onopen && this.onopen();
    }, 0);
  }

  send(text) {
    this.sent.push(JSON.parse(text));
  }

  close(code = 1000) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    setTimeout(() => this.onclose && this.onclose({ code }), 0);
  }

  reply(msg) {
    this.onmessage({ data: JSON.stringify({ ...msg, v: 1 }) });
  }

  drop(code = 1006) {
    this.readyState = 3;
    this.onclose && this.onclose({ code });
  }
}

class FakePc {
  constructor() {
    this.connectionState = "new";
    this.closed = false;
  }
  close() {
    this.closed = true;
  }
  getTransceivers() {
    return [];
  }
}

globalThis.WebSocket = FakeSocket;
globalThis.RTCPeerConnection = FakePc;
const { Room } = await import("../../tvapp/server/web/sdk/tvapp.js");

const ROOM = { sid: "RM_1", name: "r", status: "active", max_participants: 10 };
const GRANTS = { room: "r", join: true, publish: true, subscribe: true, publish_data: true, host: false, hidden: false };
const joined = (sid, resumeToken, resumed = false, others = []) => ({
  type: "joined", room: ROOM, grants: GRANTS, participant: { sid, identity: "me", joined_at: 1, tracks: [] },
  participants: others, server_time: 1, ping_interval: 10, idle_timeout: 30, resume_token: resumeToken, resumed,
});
const ALICE = { sid: "PA_A", identity: "alice", joined_at: 1, tracks: [] };

async function until(check, ms = 3000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// The join sent on socket number `n` (1: the first), once it is sent.
async function joinOn(n) {
  await until(() => FakeSocket.all.length >= n && FakeSocket.all[n - 1].sent.some((m) => m.type === "join"));
  return FakeSocket.all[n - 1].sent.find((m) => m.type === "join");
}

const rooms = [];

async function connected(options = {}) {
  const room = new Room("http://core:8800", "ACCESS", options);
  rooms.push(room);
  const events = [];
  for (const name of ["connected", "disconnected", "reconnecting", "reconnected", "participant_joined",
    "participant_left"]) room.on(name, (e) => events.push({ name, ...e }));
  const before = FakeSocket.all.length;
  const joining = room.connect();
  const join = await joinOn(before + 1);
  assert.deepEqual(join, { type: "join", token: "ACCESS", auto_subscribe: true, v: 1 });
  assert.equal(FakeSocket.all.at(-1).url, "ws://core:8800/v1/signal");
  FakeSocket.all.at(-1).reply(joined("PA_1", "r1", false, [ALICE]));
  await joining;
  return { room, events };
}

beforeEach(() => {
  FakeSocket.all = [];
  FakeSocket.refuse = false;
});

afterEach(async () => {
  // A failed test leaves no room pinging (its timers would keep node running).
  for (const room of rooms.splice(0)) await room.disconnect();
});

test("a drop resumes the same participant with the resume token and keeps the peer connection", async () => {
  const { room, events } = await connected();
  assert.equal(room.state, "connected");
  const pc = room.pc;
  FakeSocket.all.at(-1).drop();
  assert.equal(room.state, "reconnecting");
  const join = await joinOn(2);
  assert.equal(join.resume_token, "r1");
  FakeSocket.all.at(-1).reply(joined("PA_1", "r2", true, [ALICE]));
  await until(() => room.state === "connected");
  assert.equal(room.pc, pc);
  assert.equal(pc.closed, false);
  assert.equal(room.resumeToken, "r2");
  assert.deepEqual(events.map((e) => e.name), ["participant_joined", "connected", "reconnecting", "reconnected"]);
  assert.equal(events.at(-1).resumed, true);
  assert.equal(events.at(-1).reason, "signal");
  await room.disconnect();
});

test("a refused resume becomes a full rejoin with a new peer connection", async () => {
  const { room, events } = await connected();
  const pc = room.pc;
  FakeSocket.all.at(-1).drop();
  assert.equal((await joinOn(2)).resume_token, "r1");
  FakeSocket.all.at(-1).reply({ type: "error", code: "resume_refused", message: "gone" });
  FakeSocket.all.at(-1).close(1008);
  const join = await joinOn(3);
  assert.equal(join.resume_token, undefined);
  FakeSocket.all.at(-1).reply(joined("PA_2", "r9", false, [ALICE]));
  await until(() => room.state === "connected");
  assert.notEqual(room.pc, pc);
  assert.equal(pc.closed, true);
  assert.equal(room.localParticipant.sid, "PA_2");
  assert.deepEqual(events.at(-1), { name: "reconnected", reason: "signal", resumed: false });
  assert.equal(room.participants.size, 1); // alice was there all along: no second participant_joined
  assert.equal(events.filter((e) => e.name === "participant_joined").length, 1);
  await room.disconnect();
});

test("while the core is unreachable it keeps trying, then gives up with reconnect_failed", async () => {
  const { room, events } = await connected({ giveUpMs: 400 });
  FakeSocket.refuse = true;
  FakeSocket.all.at(-1).drop();
  await until(() => room.state === "disconnected", 5000);
  assert.ok(FakeSocket.all.length >= 3, `tried ${FakeSocket.all.length - 1} times`);
  assert.deepEqual(events.at(-1), { name: "disconnected", reason: "reconnect_failed" });
  assert.equal(events.filter((e) => e.name === "participant_left").length, 1);
});

test("a participant who left while this page was away is gone after the resume", async () => {
  const { room, events } = await connected();
  FakeSocket.all.at(-1).drop();
  await joinOn(2);
  FakeSocket.all.at(-1).reply(joined("PA_1", "r2", true, []));
  await until(() => room.state === "connected");
  assert.equal(room.participants.size, 0);
  assert.deepEqual(events.filter((e) => e.name === "participant_left").map((e) => e.participant.identity), ["alice"]);
  await room.disconnect();
});

test("removal ends the room; disconnect() sends leave and ends it once", async () => {
  const { room, events } = await connected();
  FakeSocket.all.at(-1).reply({ type: "removed", reason: "bye" });
  assert.equal(room.state, "disconnected");
  assert.deepEqual(events.at(-1), { name: "disconnected", reason: "removed" });
  const second = await connected();
  const socket = FakeSocket.all.at(-1);
  await second.room.disconnect();
  await second.room.disconnect();
  assert.equal(socket.sent.at(-1).type, "leave");
  assert.deepEqual(second.events.filter((e) => e.name === "disconnected"), [{ name: "disconnected",
    reason: "client_initiated" }]);
});

test("a join refused by the server rejects connect() with its code", async () => {
  const room = new Room("https://core", "BAD");
  const joining = room.connect();
  await joinOn(1);
  assert.equal(FakeSocket.all.at(-1).url, "wss://core/v1/signal");
  FakeSocket.all.at(-1).reply({ type: "error", code: "room_full", message: "full" });
  await assert.rejects(joining, (err) => err.code === "room_full");
  assert.equal(room.state, "disconnected");
});

test("network_quality sets each participant's level and tells only changes", async () => {
  const { room } = await connected();
  const seen = [];
  room.on("network_quality", (e) => seen.push([e.participant.identity, e.level, e.previous]));
  const levels = [{ participant_sid: "PA_A", level: 4, uplink: null, downlink: null },
    { participant_sid: "PA_1", level: 5, uplink: null, downlink: null },
    { participant_sid: "PA_GONE", level: 1, uplink: null, downlink: null }];
  FakeSocket.all.at(-1).reply({ type: "network_quality", levels });
  await until(() => seen.length === 2);
  FakeSocket.all.at(-1).reply({ type: "network_quality", levels: [{ participant_sid: "PA_A", level: 4 }] });
  FakeSocket.all.at(-1).reply({ type: "network_quality", levels: [{ participant_sid: "PA_A", level: 0 }] });
  await until(() => seen.length === 3);
  assert.deepEqual(seen, [["alice", 4, null], ["me", 5, null], ["alice", 0, 4]]);
  assert.equal(room.participants.get("PA_A").networkQuality, 0);
  assert.equal(room.localParticipant.networkQuality, 5);
  await room.disconnect();
});

test("room.playback sends the timeline commands as playback actions, backToLive as \"live\"", async () => {
  const { room } = await connected();
  const socket = FakeSocket.all.at(-1);
  room.playback.load("http://cdn/live.m3u8", { title: "Match" });
  room.playback.pause();
  room.playback.seek(30);
  room.playback.backToLive();
  room.playback.stop();
  const sent = socket.sent.filter((m) => m.type === "playback").map((m) => m.action);
  assert.deepEqual(sent, ["load", "pause", "seek", "live", "stop"]);
  socket.reply({ type: "playback_state", content: "http://cdn/live.m3u8", playing: true, position: 1e9, at: 1e9,
    seq: 3, live: true, live_edge: 1e9 + 6, delay: 6, window: 60, program_date_time: true, server_time: 1e9 });
  assert.equal(room.playback.state.live, true);
  assert.equal(room.playback.state.delay, 6);
  await room.disconnect();
});
