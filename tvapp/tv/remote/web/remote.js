// tvapp Remote page: pair this phone with the TV that serves the page (code typed, or QR secret in the URL
// fragment), then drive it over the /v1/remote websocket (tvapp/protocol/remote.py) and show its live state.
// The device credential lives only in localStorage and the websocket's first message, never in a URL or a log.
// Read-only debug state for tests is at window.tvappRemote.
"use strict";

(() => {
  const PROTOCOL_VERSION = 1;
  const STORAGE_PREFIX = "tvapp.remote.";
  const COMMAND_TIMEOUT_MS = 10000;
  const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
  const LAYOUTS = ["grid", "speaker", "watch", "watch_full"];

  const PAIR_MESSAGES = {
    network: "Cannot reach the TV. Check that this phone is on the same network, then try again.",
    wrong_code: "Wrong code. Check the code on the TV and try again.",
    code_changed: "Wrong code. The TV now shows a new code: type that one.",
    pairing_expired: "The code expired. Start again to get a new one.",
    no_pairing: "This pairing is over. Start again.",
    pairing_closed: "Pairing is closed on this TV after too many wrong codes. Reopen it on the TV, or wait 15 minutes.",
    bad_request: "That is not a code. Type the digits shown on the TV.",
    no_code: "Type the code shown on the TV.",
    qr_failed: "The QR code did not work. Pair with the code instead.",
  };

  const COMMAND_MESSAGES = {
    not_host: "Only the room's host can do that.",
    not_in_room: "The TV is not in a room.",
    already_in_room: "The TV is already in a room. Leave it first.",
    invalid_value: "The TV did not accept that value.",
    device_not_found: "That phone is not paired any more.",
    connection_closed: "The connection to the TV was lost before it answered. Try again.",
    timeout: "The TV did not answer. Try again.",
    offline: "Not connected to the TV yet. Wait a moment and try again.",
    internal: "The TV could not do that.",
    no_content: "Nothing is loaded. Load a video first.",
    not_allowed: "Only the room's host can control playback.",
    bad_content: "Type a URL (https://…) or a file path on the TV (starting with /).",
    bad_sdp: "The TV could not use this phone's camera stream.",
    phone_camera_failed: "The TV could not take this phone's camera. Try again.",
    not_phone_camera: "This phone is not the TV's camera.",
  };
  const SEEK_STEP_S = 10;

  const $ = (id) => document.getElementById(id);

  const remote = {
    state: "loading", // loading, pairing, connecting, ready
    tv: null, // GET /v1/tv answer
    deviceId: null,
    pairingId: null,
    lastState: null,
    devices: [],
    mic: null,
    camera: null,
    errors: [],
    sent: [],
    answers: [], // {id, type, code}: "ok" or the error code, for every answered command
    connects: 0,
    playback: null, // the last state's playback object, and when it arrived (performance.now() ms)
    playbackAt: 0,
  };
  let credential = null; // kept out of window.tvappRemote on purpose
  let ws = null;
  let authed = false;
  let attempt = 0;
  let reconnectTimer = null;
  let commandCounter = 0;
  const pending = new Map(); // id -> {type, where, timer, onOk}
  const hooks = {}; // message type (or "closed") -> handler, for the page's other parts (phonecam.js)
  let volumeBusy = false; // a set_volume is unanswered: a state push must not jump the slider back
  let volumeDragging = false;
  let positionDragging = false;

  // --- small helpers ---------------------------------------------------------------------------------------

  function setState(state) {
    remote.state = state;
    $("app").dataset.state = state;
    $("pair-screen").hidden = state !== "pairing";
    $("remote-screen").hidden = !(state === "connecting" || state === "ready");
    for (const el of $("remote-screen").querySelectorAll("button, input")) el.disabled = state !== "ready";
  }

  function setStatus(text) {
    $("status").textContent = text;
  }

  function showError(code, text) {
    remote.errors.push({ code, message: text });
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

  function showMessage(where, code, text) {
    remote.errors.push({ code, message: text, where });
    const box = $(where);
    box.textContent = text;
    box.dataset.code = code;
    box.hidden = false;
  }

  function clearMessage(where) {
    const box = $(where);
    box.hidden = true;
    box.textContent = "";
    delete box.dataset.code;
  }

  function waitText(seconds) {
    const s = Math.max(1, Math.ceil(seconds));
    return `${s} second${s === 1 ? "" : "s"}`;
  }

  async function request(method, path, body) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: body === undefined ? {} : { "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch (err) {
      return { ok: false, status: 0, code: "network", message: "", data: null };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (response.ok && data) return { ok: true, status: response.status, data };
    const error = data && data.error ? data.error : {};
    let retryAfter = data && typeof data.retry_after === "number" ? data.retry_after : null;
    if (retryAfter === null && response.headers.get("Retry-After")) {
      retryAfter = Number(response.headers.get("Retry-After")) || null;
    }
    return {
      ok: false,
      status: response.status,
      code: error.code || `http_${response.status}`,
      message: error.message || `The TV answered ${response.status}.`,
      retryAfter,
      data,
    };
  }

  // --- stored credential (one per TV instance) --------------------------------------------------------------

  function storageKey() {
    // tv_id lasts across restarts (instance_id, like the zeroconf one, is new at each start)
    return STORAGE_PREFIX + (remote.tv.tv_id || remote.tv.instance_id);
  }

  function loadCredential() {
    try {
      const saved = JSON.parse(localStorage.getItem(storageKey()) || "null");
      if (saved && typeof saved.credential === "string" && typeof saved.device_id === "string") return saved;
    } catch (err) {
      // an unreadable entry is as good as none
    }
    return null;
  }

  function saveCredential(deviceId, secret) {
    localStorage.setItem(storageKey(), JSON.stringify({ device_id: deviceId, credential: secret }));
    credential = secret;
    remote.deviceId = deviceId;
  }

  function dropCredential() {
    localStorage.removeItem(storageKey());
    credential = null;
    remote.deviceId = null;
  }

  // --- pairing ---------------------------------------------------------------------------------------------

  function showPairing(step) {
    disconnect();
    setState("pairing");
    $("pair-start").hidden = step !== "start";
    $("pair-code-form").hidden = step !== "code";
    setStatus(`${remote.tv ? remote.tv.tv_name : "TV"}: not paired yet`);
    if (step === "code") {
      $("pair-code").value = "";
      $("pair-code").focus();
    }
  }

  function pairMessage(code, text) {
    showMessage("pair-message", code, text || PAIR_MESSAGES[code] || "Pairing failed.");
  }

  async function requestPairing() {
    clearMessage("pair-message");
    const name = $("pair-name").value.trim().slice(0, 64);
    $("pair-request").disabled = true;
    const answer = await request("POST", "/v1/pairings", name ? { name } : {});
    $("pair-request").disabled = false;
    if (answer.ok) {
      remote.pairingId = answer.data.pairing_id;
      const digits = answer.data.code_digits || 6;
      $("pair-code").maxLength = digits;
      $("pair-code").placeholder = "0".repeat(digits);
      showPairing("code");
      return;
    }
    if (answer.code === "pairing_busy") {
      const wait = answer.retryAfter ? ` Try again in ${waitText(answer.retryAfter)}.` : " Try again in a moment.";
      pairMessage("pairing_busy", "Another phone is pairing with this TV right now." + wait);
    } else {
      pairMessage(answer.code, PAIR_MESSAGES[answer.code] || answer.message);
    }
  }

  async function confirmPairing(proof) {
    const name = $("pair-name").value.trim().slice(0, 64);
    const body = Object.assign({}, proof, name ? { name } : {});
    return request("POST", `/v1/pairings/${encodeURIComponent(remote.pairingId)}/confirm`, body);
  }

  function paired(answer) {
    saveCredential(answer.data.device_id, answer.data.credential);
    remote.pairingId = null;
    clearMessage("pair-message");
    connect();
  }

  let retryTimer = null;

  function holdConfirm(seconds) {
    const button = $("pair-confirm");
    button.disabled = true;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => {
      button.disabled = false;
    }, Math.ceil(seconds) * 1000);
  }

  async function submitCode() {
    clearMessage("pair-message");
    const code = $("pair-code").value.replace(/\s/g, "");
    if (!code) {
      pairMessage("no_code");
      return;
    }
    if (!/^[0-9]+$/.test(code)) {
      pairMessage("bad_request");
      return;
    }
    $("pair-confirm").disabled = true;
    const answer = await confirmPairing({ code });
    $("pair-confirm").disabled = false;
    if (answer.ok) {
      paired(answer);
      return;
    }
    $("pair-code").select();
    switch (answer.code) {
      case "wrong_code":
        if (answer.data && answer.data.rotated) pairMessage("code_changed");
        else pairMessage("wrong_code");
        break;
      case "too_soon": {
        const seconds = answer.retryAfter || 1;
        pairMessage("too_soon", `Too many wrong codes. Wait ${waitText(seconds)}, then try again.`);
        holdConfirm(seconds);
        break;
      }
      case "pairing_expired":
      case "no_pairing":
      case "pairing_closed":
        showPairing("start");
        pairMessage(answer.code);
        break;
      default:
        pairMessage(answer.code, PAIR_MESSAGES[answer.code] || answer.message);
    }
  }

  function takeFragmentPairing() {
    // #pair=<pairing_id>.<secret>[&fp=...]: read once, then remove it from the address bar and history.
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const value = params.get("pair");
    if (location.hash) history.replaceState(null, "", location.pathname + location.search);
    if (!value) return null;
    const dot = value.indexOf(".");
    if (dot <= 0 || dot === value.length - 1) return null;
    return { pairingId: value.slice(0, dot), secret: value.slice(dot + 1) };
  }

  async function pairFromQr(qr) {
    setStatus("Pairing with the TV…");
    remote.pairingId = qr.pairingId;
    const answer = await confirmPairing({ secret: qr.secret });
    if (answer.ok) {
      paired(answer);
      return;
    }
    remote.pairingId = null;
    showPairing("start");
    const why = {
      pairing_expired: "The QR code expired.",
      no_pairing: "That QR code was already used or replaced.",
      pairing_closed: "Pairing is closed on this TV.",
      too_soon: "Too many failed attempts just now.",
      network: "Cannot reach the TV.",
    }[answer.code] || "The TV did not accept the QR code.";
    pairMessage(answer.code, `${why} Pair with the code instead.`);
  }

  // --- the remote websocket --------------------------------------------------------------------------------

  function socketUrl() {
    return `${location.origin.replace(/^http/, "ws")}/v1/remote`;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (!credential) {
      showPairing("start");
      return;
    }
    setState("connecting");
    setStatus(`Connecting to ${remote.tv.tv_name}…`);
    authed = false;
    remote.connects += 1;
    const socket = new WebSocket(socketUrl());
    ws = socket;
    let dropped = false; // the TV refused the credential: pair again rather than reconnect
    socket.onopen = () => {
      socket.send(JSON.stringify({ type: "auth", v: PROTOCOL_VERSION, credential }));
    };
    socket.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      if (!msg || typeof msg !== "object") return;
      if (handleMessage(msg) === "drop") dropped = true;
    };
    socket.onclose = () => {
      if (ws !== socket) return;
      ws = null;
      authed = false;
      failPending("connection_closed");
      if (hooks.closed) hooks.closed();
      if (dropped) {
        dropCredential();
        showPairing("start");
        return;
      }
      scheduleReconnect();
    };
  }

  function disconnect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (ws) {
      const socket = ws;
      ws = null;
      authed = false;
      socket.close(1000);
    }
    failPending("connection_closed");
  }

  function scheduleReconnect() {
    const delay = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
    attempt += 1;
    setState("connecting");
    setStatus(`Lost the connection to ${remote.tv.tv_name}. Reconnecting in ${waitText(delay / 1000)}…`);
    reconnectTimer = setTimeout(connect, delay);
  }

  function handleMessage(msg) {
    switch (msg.type) {
      case "authed":
        authed = true;
        attempt = 0;
        remote.deviceId = msg.device_id;
        clearError();
        setState("ready");
        if (remote.lastState) renderState(remote.lastState);
        else setStatus(`Connected to ${msg.tv_name}`);
        sendCommand("list_devices", {}, "devices-msg");
        return null;
      case "state":
        remote.lastState = msg;
        remote.playback = msg.playback && msg.playback.content ? msg.playback : null;
        remote.playbackAt = performance.now();
        renderState(msg);
        return null;
      case "devices":
        remote.devices = Array.isArray(msg.devices) ? msg.devices : [];
        renderDevices();
        return null;
      case "ok":
        finishCommand(msg.id, null);
        return null;
      case "error":
        if (msg.id && pending.has(msg.id)) {
          finishCommand(msg.id, msg);
          return null;
        }
        if (msg.code === "auth_failed" || msg.code === "device_forgotten") {
          showError(msg.code, msg.code === "device_forgotten"
            ? "This phone was forgotten by the TV. Pair it again to use it as a remote."
            : "The TV no longer accepts this phone. Pair it again.");
          return "drop";
        }
        showError(msg.code || "error", msg.message || "The TV reported an error.");
        return null;
      default:
        if (hooks[msg.type]) hooks[msg.type](msg);
        return null; // a newer TV's message: ignore
    }
  }

  // --- commands ---------------------------------------------------------------------------------------------

  function sendCommand(type, fields, where, onOk, onError) {
    clearMessage(where);
    if (!ws || !authed || ws.readyState !== WebSocket.OPEN) {
      showMessage(where, "offline", COMMAND_MESSAGES.offline);
      return null;
    }
    commandCounter += 1;
    const id = `c${commandCounter}`;
    const timer = setTimeout(() => finishCommand(id, { code: "timeout" }), COMMAND_TIMEOUT_MS);
    pending.set(id, { type, where, timer, onOk, onError });
    const message = Object.assign({ type, v: PROTOCOL_VERSION, id }, fields);
    remote.sent.push(message);
    ws.send(JSON.stringify(message));
    return id;
  }

  function finishCommand(id, error) {
    const command = pending.get(id);
    if (!command) return;
    pending.delete(id);
    clearTimeout(command.timer);
    if (command.type === "set_volume") volumeBusy = false;
    remote.answers.push({ id, type: command.type, code: error ? error.code || "error" : "ok" });
    if (error) {
      let text = COMMAND_MESSAGES[error.code] || error.message || "The TV refused that.";
      if (command.type === "join_server" && error.message) {
        text = error.message.replace(/^join_server(\.\w+)?: /, ""); // the TV says what is wrong with the link
      }
      showMessage(command.where, error.code || "error", text);
      if (command.type === "set_volume" && remote.lastState) renderVolume(remote.lastState.volume);
      if (command.onError) command.onError(error);
      return;
    }
    if (command.onOk) command.onOk();
  }

  function failPending(code) {
    for (const id of Array.from(pending.keys())) finishCommand(id, { code });
  }

  // --- rendering the TV's state ----------------------------------------------------------------------------

  function statusLine(state) {
    const parts = [state.tv_name];
    if (state.status === "in_room") parts.push(state.room ? `in room ${state.room}` : "in a room");
    else if (state.status === "joining") parts.push("joining a room…");
    else if (state.status === "error") parts.push(state.error ? `error: ${state.error.title}` : "error");
    else parts.push("not in a room");
    if (state.status === "in_room") parts.push(whereText(state));
    if (state.invite_code) parts.push(`invite code ${state.invite_code}`);
    return parts.join(" · ");
  }

  function hostOf(url) {
    try {
      return new URL(url).host;
    } catch (err) {
      return url;
    }
  }

  function whereText(state) {
    // Where the room lives: on the TV's own server, or on another core it joined by invite link.
    return state.room_server ? `on ${hostOf(state.room_server)}` : "on this TV";
  }

  function renderServers(state) {
    const select = $("join-known");
    const chosen = select.value;
    const servers = state.servers || [];
    const wanted = ["", ...servers.map((s) => s.url)];
    const have = Array.from(select.options).map((o) => o.value);
    if (wanted.join("\n") === have.join("\n")) return;
    select.textContent = "";
    const none = document.createElement("option");
    none.value = "";
    none.textContent = servers.length ? "—" : "none yet";
    select.append(none);
    for (const server of servers) {
      const option = document.createElement("option");
      option.value = server.url;
      option.textContent = (server.name || hostOf(server.url)) + (server.fingerprint ? " (pinned certificate)" : "");
      select.append(option);
    }
    if (wanted.includes(chosen)) select.value = chosen;
  }

  function renderVolume(volume) {
    const percent = Math.round(volume * 100);
    $("volume").value = String(percent);
    $("volume-value").textContent = `${percent}%`;
  }

  function renderState(state) {
    setStatus(statusLine(state));
    $("tv-name").textContent = state.tv_name;
    $("tv-room").textContent = state.status === "in_room" ? `Room: ${state.room || "—"}` : "Not in a room";
    $("tv-invite").textContent = state.invite_code ? `Invite code: ${state.invite_code}` : "";
    $("tv-where").textContent = state.status === "in_room" ? whereText(state) : "";
    renderServers(state);
    if (state.error) showError("tv_error", `${state.error.title}${state.error.message ? ": " + state.error.message : ""}`);
    const inRoom = state.status === "in_room" || state.status === "joining";
    $("leave-room").hidden = !inRoom;
    const visible = Boolean(state.invite_visible);
    $("invite-toggle").setAttribute("aria-pressed", String(visible));
    $("invite-toggle").textContent = visible ? "Hide invite code" : "Show invite code";
    if (!volumeBusy && !volumeDragging) renderVolume(state.volume);
    for (const layout of LAYOUTS) {
      $(`layout-${layout}`).setAttribute("aria-pressed", String(state.layout === layout));
    }
    renderDevice("mic", state.mic, "mic-toggle", "TV microphone on", "TV microphone off");
    renderDevice("camera", state.camera, "camera-toggle", "TV camera on", "TV camera off");
    renderParticipants(state);
    renderPlayback();
  }

  function renderDevice(key, value, button, onText, offText) {
    // The TV's own camera or microphone: "on", "off", or "none" (it has none: no button).
    const state = value || "none";
    remote[key] = state === "none" ? null : state === "on";
    $(button).hidden = state === "none";
    $(button).setAttribute("aria-pressed", String(state === "on"));
    $(button).textContent = state === "on" ? offText : onText;
  }

  // --- now playing -----------------------------------------------------------------------------------------

  function clockText(seconds) {
    const whole = Math.max(0, Math.floor(seconds));
    const h = Math.floor(whole / 3600);
    const m = Math.floor((whole % 3600) / 60);
    const s = String(whole % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  function playbackPosition() {
    // The state's position was the room's when the TV made it; it moves on while the room plays.
    const p = remote.playback;
    if (!p) return 0;
    let position = p.position;
    if (p.live) {  // seconds behind the live edge: it grows while the room does not move
      if (!p.playing || p.waiting) position += (performance.now() - remote.playbackAt) / 1000;
      return Math.max(0, position);
    }
    if (p.playing && !p.waiting) position += (performance.now() - remote.playbackAt) / 1000;
    if (typeof p.duration === "number") position = Math.min(position, p.duration);
    return Math.max(0, position);
  }

  function renderPlayback() {
    const p = remote.playback;
    $("playback-none").hidden = Boolean(p);
    $("playback-now").hidden = !p;
    if (!p) return;
    $("playback-what").textContent = p.title || p.content;
    $("playback-what").title = p.content;
    $("playback-state").textContent = p.waiting ? "Waiting for a screen to catch up…" : p.playing ? "Playing" : "Paused";
    $("playback-toggle").textContent = p.playing ? "Pause" : "Play";
    $("playback-live").hidden = !p.live;
    renderPlaybackClock();
  }

  function renderPlaybackClock() {
    const p = remote.playback;
    if (!p) return;
    if (p.live) {  // "LIVE" and the room's delay; how far behind live when paused or rewound
      const delay = typeof p.delay === "number" ? p.delay : 0;
      const behind = playbackPosition();
      $("playback-bar").hidden = true;
      $("playback-clock").textContent = `LIVE · ${Math.round(delay)} s delay` +
        (behind > delay + 1 ? ` · ${clockText(behind - delay)} behind live` : "");
      return;
    }
    const known = typeof p.duration === "number" && p.duration > 0;
    const bar = $("playback-position");
    $("playback-bar").hidden = !known;
    const position = positionDragging ? Number(bar.value) : playbackPosition();
    $("playback-clock").textContent = clockText(position) + (known ? ` / ${clockText(p.duration)}` : "");
    if (known && !positionDragging) {
      bar.max = String(Math.ceil(p.duration));
      bar.value = String(Math.round(position));
    }
  }

  function seekTo(position) {
    const p = remote.playback;
    if (p && p.live) {  // live: the remote's position is seconds behind the live edge (never past the live point)
      const behind = Math.max(typeof p.delay === "number" ? p.delay : 0, position);
      sendCommand("playback", { action: "seek", position: Math.round(behind * 1000) / 1000 }, "playback-msg");
      return;
    }
    let target = Math.max(0, position);
    if (p && typeof p.duration === "number") target = Math.min(target, p.duration);
    sendCommand("playback", { action: "seek", position: Math.round(target * 1000) / 1000 }, "playback-msg");
  }

  function wirePlayback() {
    $("playback-toggle").addEventListener("click", () => {
      const playing = Boolean(remote.playback && remote.playback.playing);
      sendCommand("playback", { action: playing ? "pause" : "play" }, "playback-msg");
    });
    const live = () => Boolean(remote.playback && remote.playback.live);  // live: back = further behind the edge
    $("playback-back").addEventListener("click", () => seekTo(playbackPosition() + (live() ? 1 : -1) * SEEK_STEP_S));
    $("playback-forward").addEventListener("click", () => seekTo(playbackPosition() + (live() ? -1 : 1) * SEEK_STEP_S));
    $("playback-live").addEventListener("click", () => sendCommand("playback", { action: "live" }, "playback-msg"));
    $("playback-stop").addEventListener("click", () => sendCommand("playback", { action: "stop" }, "playback-msg"));
    $("playback-position").addEventListener("input", () => {
      positionDragging = true;
      renderPlaybackClock();
    });
    $("playback-position").addEventListener("change", () => {
      positionDragging = false;
      seekTo(Number($("playback-position").value));
    });
    $("load-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const content = $("load-content").value.trim();
      const title = $("load-title").value.trim();
      if (!content.startsWith("/") && !/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(content)) {
        showMessage("load-msg", "bad_content", COMMAND_MESSAGES.bad_content);
        return;
      }
      sendCommand("playback", { action: "load", content, title }, "load-msg", () => {
        $("load-content").value = "";
        $("load-title").value = "";
      });
    });
    setInterval(() => {
      if (remote.playback && remote.playback.playing) renderPlaybackClock();
    }, 250);
  }

  function renderParticipants(state) {
    const list = $("participants");
    list.replaceChildren();
    const people = Array.isArray(state.participants) ? state.participants : [];
    $("people-empty").hidden = people.length > 0;
    for (const p of people) {
      const item = document.createElement("li");
      item.dataset.identity = p.identity;
      if (p.sid === state.active_speaker || p.speaking) item.classList.add("speaking");
      const label = document.createElement("span");
      label.className = "who";
      const flags = [];
      if (p.sid === state.active_speaker) flags.push("speaking");
      if (p.mic_muted) flags.push("muted");
      if (p.camera_off) flags.push("camera off");
      label.textContent = (p.name || p.identity) + (flags.length ? ` (${flags.join(", ")})` : "");
      const mute = document.createElement("button");
      mute.type = "button";
      mute.className = "secondary mute";
      mute.textContent = "Mute";
      mute.setAttribute("aria-label", `Mute ${p.name || p.identity}`);
      mute.disabled = remote.state !== "ready";
      mute.addEventListener("click", () => {
        sendCommand("mute_participant", { identity: p.identity }, "people-msg");
      });
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "danger remove";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", `Remove ${p.name || p.identity}`);
      remove.disabled = remote.state !== "ready";
      remove.addEventListener("click", () => {
        sendCommand("remove_participant", { identity: p.identity }, "people-msg");
      });
      const actions = document.createElement("span");
      actions.className = "actions";
      actions.append(mute, remove);
      item.append(label, actions);
      list.append(item);
    }
  }

  function renderDevices() {
    const list = $("devices");
    list.replaceChildren();
    for (const d of remote.devices) {
      const item = document.createElement("li");
      item.dataset.deviceId = d.device_id;
      const label = document.createElement("span");
      label.className = "who";
      const mine = d.device_id === remote.deviceId;
      label.textContent = (d.name || d.device_id) + (mine ? " (this phone)" : "");
      const forget = document.createElement("button");
      forget.type = "button";
      forget.className = "danger forget";
      forget.textContent = "Forget";
      forget.setAttribute("aria-label", `Forget ${d.name || d.device_id}`);
      forget.disabled = remote.state !== "ready";
      forget.addEventListener("click", () => {
        sendCommand("forget_device", { device_id: d.device_id }, "devices-msg", () => {
          remote.devices = remote.devices.filter((other) => other.device_id !== d.device_id);
          renderDevices();
          if (!mine) sendCommand("list_devices", {}, "devices-msg");
        });
      });
      item.append(label, forget);
      list.append(item);
    }
  }

  // --- controls --------------------------------------------------------------------------------------------

  function wireControls() {
    $("pair-start").addEventListener("submit", (event) => {
      event.preventDefault();
      requestPairing();
    });
    $("pair-code-form").addEventListener("submit", (event) => {
      event.preventDefault();
      submitCode();
    });
    $("pair-restart").addEventListener("click", () => {
      clearMessage("pair-message");
      showPairing("start");
    });
    $("create-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const name = $("room-name").value.trim();
      sendCommand("create_room", name ? { name } : {}, "create-msg", () => {
        $("room-name").value = "";
      });
    });
    $("join-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const invite = $("join-code").value.trim();
      if (!invite) {
        showMessage("join-msg", "no_code", "Type the invite code first.");
        return;
      }
      sendCommand("join", { invite }, "join-msg", () => {
        $("join-code").value = "";
      });
    });
    $("join-server-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const link = $("join-link").value.trim();
      const code = $("join-server-code").value.trim();
      const server = link || $("join-known").value;
      let fields;
      if (link && /[?&]code=/.test(link)) {
        fields = code ? null : { link };
        if (!fields) {
          showMessage("join-server-msg", "two_codes", "The link has a code already: leave the code box empty.");
          return;
        }
      } else if (!server) {
        showMessage("join-server-msg", "no_server", "Paste an invite link, or pick a server this TV used before.");
        return;
      } else if (!code) {
        showMessage("join-server-msg", "no_code", "Type the invite code for that server.");
        return;
      } else {
        fields = { server, invite: code };
      }
      sendCommand("join_server", fields, "join-server-msg", () => {
        $("join-link").value = "";
        $("join-server-code").value = "";
      });
    });
    $("leave-room").addEventListener("click", () => sendCommand("leave", {}, "leave-msg"));
    $("invite-toggle").addEventListener("click", () => {
      const visible = $("invite-toggle").getAttribute("aria-pressed") !== "true";
      sendCommand("show_invite", { visible }, "invite-msg");
    });
    $("volume").addEventListener("input", () => {
      volumeDragging = true;
      $("volume-value").textContent = `${$("volume").value}%`;
    });
    $("volume").addEventListener("change", () => {
      volumeDragging = false;
      const volume = Number($("volume").value) / 100;
      if (sendCommand("set_volume", { volume }, "volume-msg")) volumeBusy = true;
    });
    for (const layout of LAYOUTS) {
      $(`layout-${layout}`).addEventListener("click", () => sendCommand("set_layout", { layout }, "layout-msg"));
    }
    const toggle = (key, type, button, onText, offText) => {
      $(button).addEventListener("click", () => {
        const enabled = $(button).getAttribute("aria-pressed") !== "true";
        sendCommand(type, { enabled }, "media-msg", () => {
          remote[key] = enabled;
          $(button).setAttribute("aria-pressed", String(enabled));
          $(button).textContent = enabled ? offText : onText;
        });
      });
    };
    toggle("mic", "set_mic", "mic-toggle", "TV microphone on", "TV microphone off");
    toggle("camera", "set_camera", "camera-toggle", "TV camera on", "TV camera off");
    $("devices-refresh").addEventListener("click", () => sendCommand("list_devices", {}, "devices-msg"));
    wirePlayback();
  }

  // --- start -----------------------------------------------------------------------------------------------

  async function loadTv() {
    for (let tries = 0; ; tries += 1) {
      const answer = await request("GET", "/v1/tv");
      if (answer.ok) return answer.data;
      setStatus("Cannot reach the TV. Trying again…");
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000 * 2 ** tries, 10000)));
    }
  }

  async function start() {
    wireControls();
    setState("loading");
    const qr = takeFragmentPairing();
    remote.tv = await loadTv();
    $("title").textContent = `${remote.tv.tv_name} remote`;
    if (qr) {
      await pairFromQr(qr);
      return;
    }
    const saved = loadCredential();
    if (saved) {
      credential = saved.credential;
      remote.deviceId = saved.device_id;
      connect();
      return;
    }
    showPairing("start");
    if (!remote.tv.pairing_open) pairMessage("pairing_closed");
  }

  window.tvappRemote = remote;
  window.tvappRemoteApi = { sendCommand, hooks, showMessage, clearMessage, messages: COMMAND_MESSAGES };
  document.addEventListener("DOMContentLoaded", () => {
    start();
  });
})();
