// tvapp phone web client (an ES module on the web SDK, /sdk/tvapp.js): redeem an invite code, preview the camera,
// join the room with the SDK's Room, publish camera + microphone and show the others. Signaling, negotiation (the
// server offers, the SDK answers), resuming after a drop, media repair (a fresh peer connection in the same session
// when the path dies: `media_restart`) and token refresh are the SDK's; this page is the screens around it. The
// room's shared content is watch.js's business (it gets the raw pong and playback_state messages).
// Read-only debug state for tests is at window.tvapp.

import { Room } from "/sdk/tvapp.js";
import { makeDevices, mirrorFor } from "/static/devices.js";
import { makeView, remoteParticipants as participantsOf } from "/static/view.js";

const INVITE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const INVITE_LENGTH = 8;
const TOKEN_MARGIN_S = 30;
const SILENT_ERRORS = new Set(["media_restart_too_soon"]); // the SDK asks again itself

const MESSAGES = {
  bad_code: "That is not an invite code. It has 8 letters and digits, like ABCD-EFGH.",
  no_name: "Enter your name.",
  invite_not_found: "No room has that invite code. Check the code and try again.",
  invite_expired: "This invite code has expired. Ask for a new one.",
  invite_used_up: "This invite code has been used up. Ask for a new one.",
  too_many_attempts: "Too many wrong codes. Wait a minute, then try again.",
  room_completed: "This room has ended.",
  room_full: "This room is full.",
  removed: "You were removed from this room.",
  identity_taken: "Someone with this identity is already in the room. Try again.",
  replaced: "You joined this room from another window.",
  token_expired: "Your invite timed out. Enter the code again.",
  network: "Cannot reach the server. Check your connection and try again.",
  camera_denied: "Camera and microphone are blocked. Allow them in your browser, or join to watch and listen.",
  camera_missing: "No camera or microphone found. You can still join to watch and listen.",
  insecure: "Camera and microphone need a secure page (https). You can still join to watch and listen.",
  not_allowed: "Only the host can control the video in this room.",
  resume_refused: "The connection was lost for too long. Enter the code to join again.",
  reconnect_failed: "The connection to the server was lost.",
  no_content: "Nothing is loaded to play. Load a video first.",
};

const $ = (id) => document.getElementById(id);

const session = {
  state: "idle",
  code: "",
  name: "",
  identity: "",
  tokens: null,
  room: null, // the SDK's Room while in a call
  info: null, // the joined room's {sid, name, ...}
  self: null,
  watch: null,
  localStream: null,
  dominantSid: null,
  speakers: [],
  errors: [],
  leaving: false,
  mediaDown: false, // from a media restart until the new peer connection is connected: "Reconnecting…"
  meter: null, // the preview's microphone level: {context, timer}
  micLevel: 0, // 0..1, the meter's last value
  sinkId: "", // the chosen speaker (setSinkId), "" = the browser's default
};

// --- small helpers -------------------------------------------------------------------------------------------

function setState(state) {
  session.state = state;
  $("app").dataset.state = state;
}

function showScreen(name) {
  for (const screen of ["start", "preview", "call"]) $(`${screen}-screen`).hidden = screen !== name;
}

function setStatus(text) {
  $("status").textContent = text;
}

function showError(code, message) {
  const text = MESSAGES[code] || message || "Something went wrong.";
  session.errors.push({ code, message: text });
  const box = $("error");
  box.textContent = text;
  box.dataset.code = code;
  box.hidden = false;
}

function clearError() {
  const box = $("error");
  box.hidden = true;
  box.textContent = "";
  delete box.dataset.code;
}

function normalizeCode(text) {
  const code = text.replace(/[\s-]/g, "").toUpperCase();
  if (code.length !== INVITE_LENGTH) return null;
  for (const ch of code) if (!INVITE_ALPHABET.includes(ch)) return null;
  return code;
}

function randomHex(bytes) {
  const values = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(values, (b) => b.toString(16).padStart(2, "0")).join("");
}

function newIdentity(name) {
  // Identities must be unique in the room and match [A-Za-z0-9_.@:+-]{1,64}; the name is only a hint.
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 24);
  return `web-${slug ? slug + "-" : ""}${randomHex(4)}`;
}

async function postJson(path, body) {
  let response;
  try {
    response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body), cache: "no-store" });
  } catch (err) {
    return { ok: false, code: "network", message: "" };
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (response.ok && data) return { ok: true, data };
  const error = data && data.error ? data.error : {};
  return { ok: false, code: error.code || `http_${response.status}`,
    message: error.message || `The server answered ${response.status}.` };
}

// --- step 1: invite code -> guest token ----------------------------------------------------------------------

async function redeem() {
  clearError();
  const code = normalizeCode($("code").value);
  const name = $("name").value.trim();
  if (!code) {
    showError("bad_code");
    $("code").focus();
    return false;
  }
  if (!name) {
    showError("no_name");
    $("name").focus();
    return false;
  }
  setState("redeeming");
  setStatus("Checking the code…");
  $("continue").disabled = true;
  session.code = code;
  session.name = name;
  session.identity = newIdentity(name);
  const result = await postJson(`/v1/invites/${encodeURIComponent(code)}/redeem`, { identity: session.identity, name });
  $("continue").disabled = false;
  setStatus("");
  if (!result.ok) {
    setState("idle");
    showError(result.code, result.message);
    return false;
  }
  session.tokens = result.data;
  await startPreview();
  return true;
}

async function freshTokens() {
  // The guest token pair from the redeem; trade the refresh token for a new pair when the access token is near its end.
  const tokens = session.tokens;
  if (Date.now() / 1000 < tokens.expires_at - TOKEN_MARGIN_S) return tokens;
  const result = await postJson("/v1/tokens/refresh", { refresh_token: tokens.refresh_token });
  if (!result.ok) throw Object.assign(new Error(result.message), { code: result.code });
  session.tokens = { ...tokens, ...result.data };
  return session.tokens;
}

// --- step 2: camera preview ----------------------------------------------------------------------------------

async function startPreview() {
  setState("preview");
  showScreen("preview");
  $("preview-title").textContent = `Ready to join ${session.tokens.room}?`;
  const note = $("preview-note");
  note.hidden = true;
  if (!session.localStream) session.localStream = await openCamera(note);
  $("preview").srcObject = session.localStream;
  mirrorFor($("preview"), session.localStream);
  startMeter(session.localStream);
  $("join").disabled = false;
  $("join").focus();
}

async function openCamera(note) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    note.textContent = MESSAGES.insecure;
    note.hidden = false;
    return new MediaStream();
  }
  const wanted = {
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 }, facingMode: "user" },
  };
  try {
    return await navigator.mediaDevices.getUserMedia(wanted);
  } catch (err) {
    const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
    note.textContent = denied ? MESSAGES.camera_denied : MESSAGES.camera_missing;
    note.hidden = false;
    return new MediaStream();
  }
}

function stopPreview() {
  stopMeter();
  if (session.localStream) for (const track of session.localStream.getTracks()) track.stop();
  session.localStream = null;
  $("preview").srcObject = null;
  $("self-video").srcObject = null;
}

// --- step 3: join with the SDK's Room ------------------------------------------------------------------------

function send(message) {
  // watch.js's messages (ping, playback, buffering) go out on the room's websocket.
  const room = session.room;
  if (!room) return false;
  const { type, v, ...fields } = message;
  return room._send(type, fields);
}

async function join() {
  clearError();
  $("join").disabled = true;
  stopMeter();
  setState("joining");
  setStatus("Joining…");
  session.leaving = false;
  let tokens;
  try {
    tokens = await freshTokens();
  } catch (err) {
    return joinFailed(err.code || "token_expired", err.message);
  }
  const room = new Room(location.origin, tokens.access_token, { refreshToken: tokens.refresh_token });
  session.room = room;
  wire(room);
  try {
    await room.connect();
  } catch (err) {
    if (session.room !== room) return undefined;
    session.room = null;
    return joinFailed(err.code || "network", err.code === "closed" ? MESSAGES.network : err.message);
  }
  if (session.room !== room) return undefined;
  session.self = { sid: room.localParticipant.sid, identity: room.localParticipant.identity };
  setState("joined");
  setStatus("");
  showScreen("call");
  $("call-room").textContent = room.name;
  $("self-video").srcObject = session.localStream;
  mirrorFor($("self-video"), session.localStream);
  render();
  await publishLocalTracks(room);
  return undefined;
}

function joinFailed(code, message) {
  setState("preview");
  setStatus("");
  $("join").disabled = false;
  showError(code, message);
}

async function publishLocalTracks(room) {
  // The preview's own tracks are published (no second getUserMedia); muted ones start muted. The camera goes with
  // its low rendition (simulcast: the SFU sends it to a weak link in the camera's place; paused, so not sent, while
  // nobody needs it).
  const stream = session.localStream;
  if (!stream) return;
  const lp = room.localParticipant;
  for (const track of stream.getTracks()) {
    const enable = track.kind === "video" ? (o) => lp.setCameraEnabled(true, { ...o, simulcast: true })
      : (o) => lp.setMicrophoneEnabled(true, o);
    const publication = await enable({ track });
    if (!track.enabled) lp._setMuted(publication, true);
  }
  renderControls();
  await fillDevices();
}

function wire(room) {
  const mine = (fn) => (event) => {
    if (session.room === room) fn(event);
  };
  for (const name of ["participant_joined", "participant_left", "participant_reconnecting", "participant_reconnected",
    "track_published", "track_unpublished", "track_subscribed", "track_unsubscribed", "track_muted", "track_unmuted",
    "network_quality", "track_switched_off", "track_switched_on", "local_track_published", "local_track_unpublished"]) {
    room.on(name, mine(() => render()));
  }
  room.on("active_speakers", mine((event) => {
    session.speakers = event.speakers.map((s) => ({ participant_sid: s.participant_sid, identity: s.identity,
      level: s.level }));
    session.dominantSid = event.dominantSid;
    render();
  }));
  room.on("message", mine((msg) => {
    if (msg.type === "joined") {
      session.info = msg.room;
      session.watch.joined(msg); // its clock pings keep the connection alive too
    } else if (msg.type === "pong" || msg.type === "playback_state") {
      session.watch.handle(msg);
    } else if (msg.type === "track_muted" || msg.type === "track_unmuted") {
      queueMicrotask(renderControls); // (a mute of ours by the server: the SDK applies it right after this event)
    }
  }));
  room.on("error", mine((event) => {
    if (!SILENT_ERRORS.has(event.code)) showError(event.code, event.message);
  }));
  room.on("reconnecting", mine((event) => {
    if (event.reason === "media") {
      session.mediaDown = true;
    } else {
      session.watch.left();
      setState("reconnecting");
      setStatus("Reconnecting…");
    }
    showCallState();
    render();
  }));
  room.on("reconnected", mine((event) => {
    if (event.reason === "media") {
      watchNewPc(room);
    } else {
      session.self = { sid: room.localParticipant.sid, identity: room.localParticipant.identity };
      setState("joined");
      setStatus("");
    }
    showCallState();
    render();
  }));
  room.on("local_track_changed", mine(() => showSelf()));
  room.on("disconnected", mine((event) => ended(event.reason)));
}

function watchNewPc(room) {
  // "Reconnecting…" stays until the fresh peer connection is connected.
  const pc = room.pc;
  const check = () => {
    if (session.room !== room || room.pc !== pc) return;
    if (pc.connectionState === "connected") {
      session.mediaDown = false;
      pc.removeEventListener("connectionstatechange", check);
    }
    showCallState();
  };
  pc.addEventListener("connectionstatechange", check);
  check();
}

function showCallState() {
  $("call-state").hidden = !(session.state === "reconnecting" || session.mediaDown);
}

// --- controls ----------------------------------------------------------------------------------------------

function toggle(cid) {
  const room = session.room;
  const publication = room && room.localParticipant.tracks.get(cid);
  if (!publication) return;
  const lp = room.localParticipant;
  if (cid === "camera") lp.setCameraEnabled(publication.muted);
  else lp.setMicrophoneEnabled(publication.muted);
  renderControls();
}

function leave() {
  session.leaving = true;
  const room = session.room;
  teardown();
  if (room) room.disconnect();
  setState("left");
  showScreen("start");
  setStatus("You left the room.");
}

function ended(reason) {
  // The room ended this call (removed, room completed, replaced, or the connection could not be brought back).
  const wasJoined = session.state === "joined" || session.state === "reconnecting";
  teardown();
  if (session.leaving) return;
  showError(reason, `The connection to the server closed (${reason}).`);
  if (wasJoined) {
    setState("ended");
    showScreen("start");
  } else {
    setState("preview");
    setStatus("");
    $("join").disabled = false;
  }
}

function teardown() {
  const room = session.room;
  session.room = null;
  session.mediaDown = false;
  $("call-state").hidden = true;
  session.watch.left();
  session.lastPc = room ? room.pc : session.lastPc; // stays readable (tests look at its final state)
  session.dominantSid = null;
  session.speakers = [];
  if (session.state === "joined" || session.state === "reconnecting" || session.leaving) stopPreview();
  render();
  return room;
}

const { startMeter, stopMeter, fillDevices, useDevice, flipCamera, useSpeaker, route, showSelf, toggleShare } =
  makeDevices({ session, showError, renderControls: () => renderControls() });
const { render, renderControls } = makeView({ session, route });
const remoteParticipants = () => participantsOf(session);

// --- debug state for tests (read-only snapshots) ---------------------------------------------------------------

function subscriptions() {
  const list = [];
  for (const p of remoteParticipants()) {
    for (const pub of p.tracks.values()) {
      if (pub.track) list.push({ mid: pub.track.mid, track_sid: pub.sid, participant_sid: p.sid, kind: pub.kind });
    }
  }
  return list;
}

function snapshot() {
  const room = () => session.room;
  const stat = (name, fallback = 0) => (room() ? room().stats[name] ?? fallback : fallback);
  return {
    get state() { return session.state; },
    get pc() { return room() ? room().pc : session.lastPc || null; },
    get ws() { return room() ? room().ws : null; },
    get identity() { return session.identity; },
    get room() { return session.info ? { ...session.info } : null; },
    get self() { return session.self ? { ...session.self } : null; },
    get participants() {
      return remoteParticipants().map((p) => ({ sid: p.sid, identity: p.identity, name: p.name,
        tracks: Array.from(p.tracks.values(), (t) => ({ sid: t.sid, kind: t.kind, source: t.source, name: t.name,
          muted: t.muted })) }));
    },
    get localTracks() {
      const tracks = room() ? Array.from(room().localParticipant.tracks.values()) : [];
      return tracks.map((e) => ({ cid: e.cid, kind: e.kind, source: e.source, sid: e.sid, muted: e.muted, mid: e.mid,
        enabled: e.track.enabled, deviceId: e.track.getSettings ? e.track.getSettings().deviceId || null : null,
        low: e.low ? { cid: e.low.cid, sid: e.low.sid, mid: e.low.mid } : null }));
    },
    get subscriptions() { return subscriptions(); },
    get dominantSid() { return session.dominantSid; },
    get speakers() { return session.speakers.map((s) => ({ ...s })); },
    get errors() { return session.errors.map((e) => ({ ...e })); },
    get offersAnswered() { return stat("offersAnswered"); },
    get resumes() { return stat("resumes"); },
    get generation() { return room() ? room().generation : 0; },
    get mediaRepairing() { return Boolean(room() && room()._mediaRepairing); },
    get mediaDown() { return session.mediaDown; },
    get mediaRestarts() { return stat("mediaRestarts"); },
    get lastMediaRestart() { return stat("lastMediaRestart", null); },
    get micLevel() { return session.micLevel; },
    get sinkId() { return session.sinkId; },
  };
}

// --- wiring --------------------------------------------------------------------------------------------------

function nameOf(identity) {
  if (session.self && session.self.identity === identity) return "you";
  for (const p of remoteParticipants()) if (p.identity === identity) return p.name || p.identity;
  return identity;
}

function start() {
  Object.defineProperty(window, "tvapp", { value: Object.freeze(snapshot()), writable: false, configurable: false });
  session.watch = window.TvappWatch.create({ send, nameOf });
  $("start-form").addEventListener("submit", (event) => {
    event.preventDefault();
    redeem();
  });
  $("join").addEventListener("click", join);
  $("back").addEventListener("click", () => {
    stopPreview();
    setState("idle");
    showScreen("start");
  });
  $("mic").addEventListener("click", () => toggle("microphone"));
  $("cam").addEventListener("click", () => toggle("camera"));
  $("leave").addEventListener("click", leave);
  $("share").addEventListener("click", toggleShare);
  $("flip").addEventListener("click", flipCamera);
  $("camera-select").addEventListener("change", (event) => useDevice("camera", event.target.value));
  $("mic-select").addEventListener("change", (event) => useDevice("microphone", event.target.value));
  $("speaker-select").addEventListener("change", (event) => useSpeaker(event.target.value));
  if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
    navigator.mediaDevices.addEventListener("devicechange", () => {
      if (session.room) fillDevices();
    });
  }
  window.addEventListener("pagehide", () => {
    if (session.room) {
      session.leaving = true;
      session.room.disconnect();
    }
  });

  const params = new URLSearchParams(location.search);
  if (params.has("code")) $("code").value = params.get("code");
  if (params.has("name")) $("name").value = params.get("name");
  if (params.get("autojoin") === "1" && params.has("code") && params.has("name")) {
    redeem().then((ok) => {
      if (ok) join();
    });
  } else {
    ($("code").value ? $("name") : $("code")).focus();
  }
}

start();
