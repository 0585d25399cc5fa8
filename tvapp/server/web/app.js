// tvapp phone web client: redeem an invite code, preview the camera, join the room over the signaling
// websocket, publish camera + microphone and show the others. The server makes every SDP offer; this page
// answers them: "publish" m-lines get our local tracks, "subscribe" m-lines carry a remote participant's
// track (the offer's `transceivers` list says which mid is which). The room's shared content is watch.js's business
// (pong and playback_state go there). Read-only debug state for tests is at window.tvapp.
// Media repair: a peer connection whose ICE failed, or stayed "disconnected" for MEDIA_DEAD_MS, or received no RTP
// for MEDIA_DEAD_MS while something it subscribes to should send, is replaced in the same session: `media_restart`
// with the next generation; offers of older generations are ignored (the rule of the SDK's sdk/media.js; this page
// is a classic script, so it carries its own copy of that small rule).
"use strict";

(() => {
  const PROTOCOL_VERSION = 1;
  const INVITE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
  const INVITE_LENGTH = 8;
  const TOKEN_MARGIN_S = 30;
  const RESUME_FOR_MS = 25_000; // keep trying to resume this long after a drop (the server's grace is 20 s)
  const RESUME_RETRY_MS = 1_000;
  const LOCAL_SOURCES = { audio: "microphone", video: "camera" };
  const MEDIA_DEAD_MS = 2_000; // ICE "disconnected", or no inbound RTP while some should come, this long: repair
  const MEDIA_CHECK_MS = 500;
  const MEDIA_RESTART_RETRY_MS = 1_100; // after media_restart_too_soon (the server allows one restart a second)

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
    no_content: "Nothing is loaded to play. Load a video first.",
  };

  const $ = (id) => document.getElementById(id);

  const session = {
    state: "idle",
    code: "",
    name: "",
    identity: "",
    tokens: null,
    room: null,
    self: null,
    ws: null,
    pc: null,
    watch: null,
    localStream: null,
    local: new Map(), // cid -> {cid, kind, source, track, sid, muted, mid}
    participants: new Map(), // sid -> {sid, identity, name, tracks: Map(sid -> TrackInfo)}
    subscriptions: new Map(), // mid -> {mid, track_sid, participant_sid, kind, track}
    speakers: [],
    dominantSid: null,
    errors: [],
    lastServerError: null,
    offersAnswered: 0,
    candidatesSent: 0,
    negotiation: Promise.resolve(),
    leaving: false,
    resumeToken: null, // from "joined": a new socket presents it to take this participant over after a drop
    reconnectingSince: 0,
    resumes: 0,
    generation: 0, // our media_restart count in this participant session (offers carry the one they answer)
    mediaRepairing: false, // a media_restart is out and its offer not answered yet
    mediaDown: false, // from a media_restart until the new pc is connected: the call header reads "Reconnecting…"
    mediaBadSince: null, // when ICE went "disconnected"
    inbound: { bytes: -1, since: 0 }, // inbound RTP bytes on the current pc and since when they have not grown
    mediaTimer: null,
    mediaRestarts: 0,
  };

  // --- small helpers ---------------------------------------------------------------------------------------

  function setState(state) {
    session.state = state;
    $("app").dataset.state = state;
  }

  function showScreen(name) {
    for (const screen of ["start", "preview", "call"]) {
      $(`${screen}-screen`).hidden = screen !== name;
    }
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
      response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        cache: "no-store",
      });
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
    return {
      ok: false,
      code: error.code || `http_${response.status}`,
      message: error.message || `The server answered ${response.status}.`,
    };
  }

  // --- step 1: invite code -> guest token ------------------------------------------------------------------

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
    const result = await postJson(`/v1/invites/${encodeURIComponent(code)}/redeem`, {
      identity: session.identity,
      name,
    });
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

  async function freshAccessToken() {
    const tokens = session.tokens;
    if (Date.now() / 1000 < tokens.expires_at - TOKEN_MARGIN_S) return tokens.access_token;
    const result = await postJson("/v1/tokens/refresh", { refresh_token: tokens.refresh_token });
    if (!result.ok) throw Object.assign(new Error(result.message), { code: result.code });
    session.tokens = result.data;
    return result.data.access_token;
  }

  // --- step 2: camera preview ------------------------------------------------------------------------------

  async function startPreview() {
    setState("preview");
    showScreen("preview");
    $("preview-title").textContent = `Ready to join ${session.tokens.room}?`;
    const note = $("preview-note");
    note.hidden = true;
    if (!session.localStream) {
      session.localStream = await openCamera(note);
    }
    $("preview").srcObject = session.localStream;
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
    if (session.localStream) {
      for (const track of session.localStream.getTracks()) track.stop();
    }
    session.localStream = null;
    $("preview").srcObject = null;
    $("self-video").srcObject = null;
  }

  // --- step 3: join over the signaling websocket -----------------------------------------------------------

  function send(message) {
    const ws = session.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify({ ...message, v: PROTOCOL_VERSION }));
    return true;
  }

  async function join() {
    clearError();
    $("join").disabled = true;
    setState("joining");
    setStatus("Joining…");
    let token;
    try {
      token = await freshAccessToken();
    } catch (err) {
      setState("preview");
      setStatus("");
      $("join").disabled = false;
      showError(err.code || "token_expired", err.message);
      return;
    }
    session.leaving = false;
    session.lastServerError = null;
    session.resumeToken = null;
    openSocket(token, null);
  }

  function openSocket(token, resumeToken) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/v1/signal`);
    session.ws = ws;
    ws.onopen = () => send(resumeToken ? { type: "join", token, auto_subscribe: true, resume_token: resumeToken }
      : { type: "join", token, auto_subscribe: true });
    ws.onmessage = (event) => {
      if (ws !== session.ws) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      try {
        onMessage(message);
      } catch (err) {
        console.warn("tvapp: could not handle", message.type, err);
      }
    };
    ws.onclose = (event) => {
      if (ws === session.ws) onClosed(event);
    };
  }

  // --- after a drop: resume the same participant (same sid, same tracks, same peer connection) ----------------

  function startReconnecting() {
    session.ws = null;
    session.reconnectingSince = Date.now();
    session.watch.left();
    setState("reconnecting");
    setStatus("Reconnecting…");
    $("call-state").hidden = false;
    setTimeout(tryResume, 200);
  }

  async function tryResume() {
    if (session.state !== "reconnecting" || session.leaving) return;
    if (Date.now() - session.reconnectingSince > RESUME_FOR_MS) {
      session.lastServerError = { code: "disconnected", message: "The connection to the server was lost." };
      return onClosed({ code: 1006, reason: "" });
    }
    session.resumes += 1;
    let token;
    try {
      token = await freshAccessToken();
    } catch (err) {
      setTimeout(tryResume, RESUME_RETRY_MS);
      return;
    }
    session.lastServerError = null;
    openSocket(token, session.resumeToken);
  }

  function onMessage(msg) {
    switch (msg.type) {
      case "joined":
        return onJoined(msg);
      case "participant_joined":
        addParticipant(msg.participant);
        return render();
      case "participant_left":
        session.participants.delete(msg.participant_sid);
        return render();
      case "participant_reconnecting":
      case "participant_reconnected": {
        const p = session.participants.get(msg.participant_sid);
        if (p) p.reconnecting = msg.type === "participant_reconnecting";
        return render();
      }
      case "track_published":
        return onTrackPublished(msg);
      case "track_unpublished": {
        const p = session.participants.get(msg.participant_sid);
        if (p) p.tracks.delete(msg.track_sid);
        return render();
      }
      case "track_muted":
      case "track_unmuted":
        return onTrackMuted(msg, msg.type === "track_muted");
      case "network_quality":
        for (const q of msg.levels || []) {
          const p = session.participants.get(q.participant_sid);
          if (p) p.quality = q.level;
        }
        return render();
      case "active_speakers":
        session.speakers = msg.speakers || [];
        session.dominantSid = msg.dominant_sid || null;
        return render();
      case "offer":
        return negotiate(answerOffer, msg);
      case "candidate":
        return negotiate(addRemoteCandidate, msg);
      case "pong":
      case "playback_state":
        session.watch.handle(msg);
        return undefined;
      case "error":
        if (msg.code === "media_restart_too_soon") return retryMediaRestart();
        session.lastServerError = { code: msg.code, message: msg.message };
        return showError(msg.code, msg.message);
      case "removed":
        session.lastServerError = { code: "removed", message: msg.reason };
        return undefined;
      case "room_completed":
        session.lastServerError = { code: "room_completed", message: "" };
        return undefined;
      default:
        return undefined; // data and types from newer servers
    }
  }

  function onJoined(msg) {
    session.resumeToken = msg.resume_token || null;
    if (msg.resumed && session.state === "reconnecting" && session.pc) {
      // The same participant carries on: its tracks, subscriptions and peer connection are as they were.
      session.room = msg.room;
      session.participants.clear();
      for (const p of msg.participants || []) addParticipant(p);
      session.watch.joined(msg);
      setState("joined");
      setStatus("");
      $("call-state").hidden = !session.mediaDown;
      if (session.mediaRepairing) send({ type: "media_restart", generation: session.generation }); // may be lost
      render();
      return;
    }
    session.room = msg.room;
    session.self = msg.participant;
    session.participants.clear();
    for (const p of msg.participants || []) {
      if (p.sid !== msg.participant.sid) addParticipant(p);
    }
    session.iceServers = msg.ice_servers || [];
    session.generation = 0;
    session.mediaRepairing = session.mediaDown = false;
    session.pc = newPeerConnection(session.iceServers);
    startMediaWatch();
    session.watch.joined(msg); // its clock pings keep the connection alive too
    publishLocalTracks();
    setState("joined");
    setStatus("");
    showScreen("call");
    $("call-room").textContent = msg.room.name;
    $("self-video").srcObject = session.localStream;
    render();
  }

  function addParticipant(info) {
    const tracks = new Map((info.tracks || []).map((t) => [t.sid, { ...t }]));
    session.participants.set(info.sid, {
      sid: info.sid, identity: info.identity, name: info.name, tracks, reconnecting: Boolean(info.reconnecting),
      quality: info.network_quality ?? null, // 0..5 as the SFU measures it (network_quality); null: not yet
    });
  }

  function publishLocalTracks() {
    session.local.clear();
    const stream = session.localStream;
    if (!stream) return;
    for (const track of stream.getTracks()) {
      const source = LOCAL_SOURCES[track.kind];
      const entry = { cid: source, kind: track.kind, source, track, sid: null, muted: !track.enabled, mid: null };
      session.local.set(entry.cid, entry);
      // No device label as the name: it can name the owner ("Alex's iPhone camera").
      send({ type: "publish", cid: entry.cid, kind: entry.kind, source, name: "", muted: entry.muted });
    }
  }

  function onTrackPublished(msg) {
    if (msg.cid && session.local.has(msg.cid) && session.self && msg.participant_sid === session.self.sid) {
      const entry = session.local.get(msg.cid);
      entry.sid = msg.track.sid;
      if (entry.muted !== msg.track.muted) send({ type: "mute", track_sid: entry.sid, muted: entry.muted });
      return renderControls();
    }
    const p = session.participants.get(msg.participant_sid);
    if (p) p.tracks.set(msg.track.sid, { ...msg.track });
    return render();
  }

  function onTrackMuted(msg, muted) {
    if (session.self && msg.participant_sid === session.self.sid) {
      for (const entry of session.local.values()) {
        if (entry.sid === msg.track_sid && msg.by_server) {
          entry.muted = muted;
          entry.track.enabled = !muted;
        }
      }
      return renderControls();
    }
    const p = session.participants.get(msg.participant_sid);
    const track = p && p.tracks.get(msg.track_sid);
    if (track) track.muted = muted;
    return render();
  }

  // --- media: the server offers, we answer ------------------------------------------------------------------

  function newPeerConnection(iceServers) {
    const servers = iceServers.map((s) => {
      const server = { urls: s.urls };
      if (s.username) server.username = s.username;
      if (s.credential) server.credential = s.credential;
      return server;
    });
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle", iceServers: servers });
    pc.onicecandidate = (event) => {
      const c = event.candidate;
      session.candidatesSent += 1;
      send(c && c.candidate
        ? { type: "candidate", candidate: c.candidate, sdp_mid: c.sdpMid, sdp_mline_index: c.sdpMLineIndex }
        : { type: "candidate", candidate: "", sdp_mid: null, sdp_mline_index: null });
    };
    pc.onconnectionstatechange = () => {
      if (pc !== session.pc) return;
      checkMedia();
      showMediaState();
    };
    return pc;
  }

  // --- media repair: a dead media path gets a fresh peer connection in the same session ------------------------

  function startMediaWatch() {
    clearInterval(session.mediaTimer);
    session.mediaBadSince = null;
    session.inbound = { bytes: -1, since: Date.now() };
    session.mediaTimer = setInterval(() => {
      checkMedia();
      checkInbound();
    }, MEDIA_CHECK_MS);
  }

  function checkMedia() {
    // While the websocket itself is being resumed nothing can be asked; the check runs again once it is back.
    const pc = session.pc;
    if (!pc || session.state !== "joined" || session.mediaRepairing) return;
    const state = pc.connectionState;
    if (state !== "failed" && state !== "disconnected") {
      session.mediaBadSince = null;
      return;
    }
    if (session.mediaBadSince === null) session.mediaBadSince = Date.now();
    if (state === "failed" || Date.now() - session.mediaBadSince >= MEDIA_DEAD_MS) restartMedia("ice_" + state);
  }

  function expectsInbound() {
    // Something we subscribe to should be sending: its publisher is here, not reconnecting, the track not muted.
    for (const sub of session.subscriptions.values()) {
      const p = session.participants.get(sub.participant_sid);
      const track = p && p.tracks.get(sub.track_sid);
      if (p && !p.reconnecting && track && !track.muted) return true;
    }
    return false;
  }

  async function checkInbound() {
    const pc = session.pc;
    if (!pc || session.state !== "joined" || session.mediaRepairing || pc.connectionState !== "connected"
        || !expectsInbound()) {
      session.inbound = { bytes: -1, since: Date.now() };
      return;
    }
    let bytes = 0;
    try {
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s.type === "inbound-rtp") bytes += s.bytesReceived || 0;
      });
    } catch (err) {
      return;
    }
    if (pc !== session.pc || session.mediaRepairing) return;
    const now = Date.now();
    if (bytes === 0 || bytes !== session.inbound.bytes) { // (a pc that never got any is ICE's to judge)
      session.inbound = { bytes, since: now };
    } else if (now - session.inbound.since >= MEDIA_DEAD_MS) {
      restartMedia("no_inbound_rtp");
    }
  }

  function restartMedia(reason) {
    // Close the dead pc, make a new one and ask the server for a fresh offer; our tracks keep their sids (the
    // server re-attaches them; its offer lists them by cid and answerOffer puts our tracks on the new m-lines).
    session.mediaBadSince = null;
    session.generation += 1;
    session.mediaRestarts += 1;
    session.mediaRepairing = true;
    session.mediaDown = true;
    session.lastMediaRestart = reason;
    $("call-state").hidden = false;
    if (session.pc) session.pc.close();
    session.negotiation = Promise.resolve();
    session.subscriptions = new Map();
    session.inbound = { bytes: -1, since: Date.now() };
    session.pc = newPeerConnection(session.iceServers || []);
    send({ type: "media_restart", generation: session.generation });
    render();
  }

  function retryMediaRestart() {
    const generation = session.generation;
    setTimeout(() => {
      if (session.mediaRepairing && session.generation === generation && session.state === "joined") {
        send({ type: "media_restart", generation });
      }
    }, MEDIA_RESTART_RETRY_MS);
  }

  function mediaRepaired() {
    session.mediaRepairing = false;
    showMediaState();
  }

  function showMediaState() {
    const pc = session.pc;
    if (session.mediaDown && !session.mediaRepairing && pc && pc.connectionState === "connected") {
      session.mediaDown = false;
    }
    if (session.state === "joined") $("call-state").hidden = !session.mediaDown;
  }

  function negotiate(step, msg) {
    // One step at a time, in the order the server sent them; a step of a connection since closed is moot.
    const pc = session.pc;
    session.negotiation = session.negotiation
      .then(() => step(pc, msg))
      .catch((err) => {
        if (pc !== session.pc || pc.signalingState === "closed" || session.state !== "joined") return;
        console.warn("tvapp: negotiation failed", err);
        showError("negotiation_failed", "Could not set up audio and video with the server.");
      });
  }

  async function answerOffer(pc, msg) {
    if (!pc || pc.signalingState === "closed" || (msg.generation || 0) !== session.generation) return;
    await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
    const byMid = new Map();
    for (const t of pc.getTransceivers()) {
      if (t.mid !== null) byMid.set(t.mid, t);
    }
    const listed = new Set();
    const subscriptions = new Map();
    for (const entry of session.local.values()) entry.mid = null;
    for (const info of msg.transceivers || []) {
      const t = byMid.get(info.mid);
      if (!t) continue;
      listed.add(info.mid);
      if (info.direction === "publish") {
        const entry = info.cid ? session.local.get(info.cid) : undefined;
        if (!entry) {
          await idle(t);
          continue;
        }
        if (t.sender.track !== entry.track) await t.sender.replaceTrack(entry.track);
        t.direction = "sendonly";
        entry.mid = info.mid;
      } else {
        t.direction = "recvonly";
        subscriptions.set(info.mid, { ...info, generation: session.generation, track: t.receiver.track });
      }
    }
    for (const [mid, t] of byMid) {
      if (!listed.has(mid)) await idle(t);
    }
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    if (pc !== session.pc) return;
    send({ type: "answer", sdp: pc.localDescription.sdp });
    session.offersAnswered += 1;
    session.subscriptions = subscriptions;
    mediaRepaired();
    render();
  }

  async function idle(transceiver) {
    if (transceiver.currentDirection === "stopped") return;
    if (transceiver.sender.track) await transceiver.sender.replaceTrack(null);
    transceiver.direction = "inactive";
  }

  async function addRemoteCandidate(pc, msg) {
    if (!pc || pc.signalingState === "closed" || !pc.remoteDescription) return;
    if (!msg.candidate) {
      await pc.addIceCandidate();
      return;
    }
    await pc.addIceCandidate({ candidate: msg.candidate, sdpMid: msg.sdp_mid, sdpMLineIndex: msg.sdp_mline_index });
  }

  // --- controls ---------------------------------------------------------------------------------------------

  function setLocalMuted(cid, muted) {
    const entry = session.local.get(cid);
    if (!entry) return;
    entry.muted = muted;
    entry.track.enabled = !muted;
    if (entry.sid) send({ type: "mute", track_sid: entry.sid, muted });
    renderControls();
  }

  function toggle(cid) {
    const entry = session.local.get(cid);
    if (entry) setLocalMuted(cid, !entry.muted);
  }

  function leave() {
    session.leaving = true;
    send({ type: "leave" });
    teardown();
    setState("left");
    showScreen("start");
    setStatus("You left the room.");
  }

  function onClosed(event) {
    const dropped = !session.leaving && !session.lastServerError && event.code !== 1000 && session.resumeToken;
    if (dropped && session.state === "joined") return startReconnecting();
    if (session.state === "reconnecting" && !session.leaving) {
      const refused = session.lastServerError && session.lastServerError.code === "resume_refused";
      if (!refused && Date.now() - session.reconnectingSince <= RESUME_FOR_MS) {
        session.ws = null;
        setTimeout(tryResume, RESUME_RETRY_MS); // the server is not reachable yet: try again
        return undefined;
      }
      session.state = "joined"; // end the call as a drop does
    }
    const wasJoined = session.state === "joined";
    teardown();
    if (session.leaving) return;
    const error = session.lastServerError;
    if (error) {
      showError(error.code, error.message);
    } else {
      showError("disconnected", `The connection to the server closed (${event.code}${event.reason ? ": " + event.reason : ""}).`);
    }
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
    $("call-state").hidden = true;
    clearInterval(session.mediaTimer);
    session.mediaTimer = null;
    session.mediaRepairing = session.mediaDown = false;
    session.resumeToken = null;
    session.watch.left();
    const ws = session.ws;
    session.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, "left");
    // session.pc stays readable after close (tests look at its final state); the next join replaces it.
    if (session.pc) session.pc.close();
    session.negotiation = Promise.resolve();
    session.subscriptions = new Map();
    session.participants.clear();
    session.dominantSid = null;
    session.speakers = [];
    session.local.clear();
    if (session.state === "joined" || session.leaving) stopPreview();
    render();
  }

  // --- rendering --------------------------------------------------------------------------------------------

  function render() {
    const grid = $("grid");
    const seen = new Set();
    for (const p of session.participants.values()) {
      seen.add(p.sid);
      renderTile(grid, p);
    }
    for (const tile of Array.from(grid.children)) {
      if (!seen.has(tile.dataset.sid)) tile.remove();
    }
    const count = session.participants.size;
    grid.dataset.count = String(count);
    grid.classList.toggle("pair", count === 2);
    grid.classList.toggle("many", count > 2);
    $("alone").hidden = count > 0;
    $("call-count").textContent = `${count + 1} in the room`;
    renderAudio();
    renderControls();
  }

  function renderTile(grid, p) {
    let tile = grid.querySelector(`[data-sid="${CSS.escape(p.sid)}"]`);
    if (!tile) {
      tile = document.createElement("div");
      tile.className = "tile";
      tile.dataset.sid = p.sid;
      const video = document.createElement("video");
      video.autoplay = true;
      video.playsInline = true;
      video.muted = true; // sound plays through the participant's <audio> element
      const initial = document.createElement("span");
      initial.className = "initial";
      const label = document.createElement("span");
      label.className = "name";
      const state = document.createElement("span");
      state.className = "state";
      state.textContent = "Reconnecting…";
      const bars = document.createElement("span"); // network quality: 5 bars, `level` of them lit
      bars.className = "quality";
      bars.setAttribute("role", "img");
      for (let i = 0; i < 5; i++) bars.append(document.createElement("i"));
      tile.append(video, initial, label, state, bars);
      grid.append(tile);
    }
    const shown = p.name || p.identity;
    tile.querySelector(".name").textContent = shown;
    tile.querySelector(".initial").textContent = shown.slice(0, 1).toUpperCase();
    tile.dataset.identity = p.identity;
    const video = subscriptionOf(p.sid, "video");
    attach(tile.querySelector("video"), video);
    const camera = tracksOf(p, "video")[0];
    const mic = tracksOf(p, "audio")[0];
    tile.classList.toggle("video-off", !video || !camera || camera.muted);
    tile.classList.toggle("mic-off", !mic || mic.muted);
    tile.classList.toggle("speaking", p.sid === session.dominantSid);
    tile.classList.toggle("reconnecting", Boolean(p.reconnecting)); // its link dropped; the server keeps its place
    renderQuality(tile.querySelector(".quality"), p.quality);
  }

  const QUALITY_WORDS = ["broken", "bad", "poor", "fair", "good", "excellent"];

  function renderQuality(bars, level) {
    const known = Number.isInteger(level);
    bars.hidden = !known;
    bars.dataset.level = known ? String(level) : "";
    bars.setAttribute("aria-label", known ? `Network quality ${level} of 5 (${QUALITY_WORDS[level]})` : "");
    Array.from(bars.children).forEach((bar, i) => bar.classList.toggle("lit", known && i < level));
  }

  function tracksOf(p, kind) {
    return Array.from(p.tracks.values()).filter((t) => t.kind === kind);
  }

  function subscriptionOf(participantSid, kind) {
    for (const sub of session.subscriptions.values()) {
      if (sub.participant_sid === participantSid && sub.kind === kind) return sub;
    }
    return null;
  }

  function attach(element, sub) {
    const key = sub ? `${sub.generation}/${sub.mid}/${sub.track_sid}` : ""; // a new pc may reuse a mid
    if (element.dataset.key === key) return;
    element.dataset.key = key;
    element.srcObject = sub ? new MediaStream([sub.track]) : null;
  }

  function renderAudio() {
    const sink = $("audio-sink");
    const wanted = new Map();
    for (const sub of session.subscriptions.values()) {
      if (sub.kind === "audio" && session.participants.has(sub.participant_sid)) wanted.set(sub.mid, sub);
    }
    for (const element of Array.from(sink.children)) {
      if (!wanted.has(element.dataset.mid)) {
        element.srcObject = null;
        element.remove();
      }
    }
    for (const [mid, sub] of wanted) {
      let element = sink.querySelector(`[data-mid="${CSS.escape(mid)}"]`);
      if (!element) {
        element = document.createElement("audio");
        element.autoplay = true;
        element.dataset.mid = mid;
        sink.append(element);
      }
      element.dataset.participant = sub.participant_sid;
      attach(element, sub);
    }
  }

  function renderControls() {
    const mic = session.local.get("microphone");
    const cam = session.local.get("camera");
    $("mic").disabled = !mic;
    $("cam").disabled = !cam;
    $("mic").setAttribute("aria-pressed", String(Boolean(mic && mic.muted)));
    $("cam").setAttribute("aria-pressed", String(Boolean(cam && cam.muted)));
    $("mic").textContent = mic && mic.muted ? "Unmute" : "Mute";
    $("cam").textContent = cam && cam.muted ? "Camera on" : "Camera off";
    $("self").classList.toggle("video-off", !cam || cam.muted);
    $("self").classList.toggle("speaking", Boolean(session.self && session.self.sid === session.dominantSid));
  }

  // --- debug state for tests (read-only snapshots) ----------------------------------------------------------

  function snapshot() {
    return {
      get state() { return session.state; },
      get pc() { return session.pc; },
      get ws() { return session.ws; },
      get identity() { return session.identity; },
      get room() { return session.room ? { ...session.room } : null; },
      get self() { return session.self ? { sid: session.self.sid, identity: session.self.identity } : null; },
      get participants() {
        return Array.from(session.participants.values(), (p) => ({
          sid: p.sid, identity: p.identity, name: p.name, tracks: Array.from(p.tracks.values(), (t) => ({ ...t })),
        }));
      },
      get localTracks() {
        return Array.from(session.local.values(), (e) => ({
          cid: e.cid, kind: e.kind, source: e.source, sid: e.sid, muted: e.muted, mid: e.mid, enabled: e.track.enabled,
        }));
      },
      get subscriptions() {
        return Array.from(session.subscriptions.values(), (s) => ({
          mid: s.mid, track_sid: s.track_sid, participant_sid: s.participant_sid, kind: s.kind,
        }));
      },
      get dominantSid() { return session.dominantSid; },
      get speakers() { return session.speakers.map((s) => ({ ...s })); },
      get errors() { return session.errors.map((e) => ({ ...e })); },
      get offersAnswered() { return session.offersAnswered; },
      get resumes() { return session.resumes; },
      get generation() { return session.generation; },
      get mediaRepairing() { return session.mediaRepairing; },
      get mediaDown() { return session.mediaDown; },
      get mediaRestarts() { return session.mediaRestarts; },
      get lastMediaRestart() { return session.lastMediaRestart || null; },
      get candidatesSent() { return session.candidatesSent; },
    };
  }

  // --- wiring -----------------------------------------------------------------------------------------------

  function nameOf(identity) {
    if (session.self && session.self.identity === identity) return "you";
    for (const p of session.participants.values()) if (p.identity === identity) return p.name || p.identity;
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
    window.addEventListener("pagehide", () => {
      if (session.ws) {
        session.leaving = true;
        send({ type: "leave" });
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
})();
