// tvapp phone web client: the call's view. A tile per remote participant (its camera, name, mute, speaking,
// reconnecting, network quality bars) and one per shared screen, an <audio> per remote voice, the control buttons.
// Everything is drawn from the SDK Room in `session.room`; app.js calls render() after every room event.

const $ = (id) => document.getElementById(id);

/** Return the remote participants of the room in the call (none outside one). */
export function remoteParticipants(session) {
  return session.room ? Array.from(session.room.participants.values()) : [];
}

/** Return the view functions for the page whose state is `session`; `route` sends an <audio> to the speaker. */
export function makeView({ session, route }) {
  function render() {
    const grid = $("grid");
    const seen = new Set();
    const people = remoteParticipants(session);
    for (const p of people) {
      seen.add(p.sid);
      const videos = publicationsOf(p, "video");
      renderTile(grid, p, p.sid, videos.find((t) => t.source !== "screen") || null, false);
      for (const screen of videos.filter((t) => t.source === "screen")) { // a shared screen is a tile of its own
        const key = `${p.sid}/${screen.sid}`;
        seen.add(key);
        renderTile(grid, p, key, screen, true);
      }
    }
    for (const tile of Array.from(grid.children)) if (!seen.has(tile.dataset.sid)) tile.remove();
    const count = people.length;
    grid.dataset.count = String(count);
    grid.classList.toggle("pair", seen.size === 2);
    grid.classList.toggle("many", seen.size > 2);
    $("alone").hidden = count > 0;
    $("call-count").textContent = `${count + 1} in the room`;
    renderAudio(people);
    renderControls();
  }

  function renderTile(grid, p, key, camera, screen) {
    let tile = grid.querySelector(`[data-sid="${CSS.escape(key)}"]`);
    if (!tile) {
      tile = document.createElement("div");
      tile.className = screen ? "tile screen" : "tile";
      tile.dataset.sid = key;
      tile.dataset.source = screen ? "screen" : "camera";
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
    tile.querySelector(".name").textContent = screen ? `${shown}'s screen` : shown;
    tile.querySelector(".initial").textContent = shown.slice(0, 1).toUpperCase();
    tile.dataset.identity = p.identity;
    const mic = screen ? null : publicationsOf(p, "audio")[0];
    const video = camera && camera.track;
    show(tile.querySelector("video"), video);
    tile.classList.toggle("video-off", !video || camera.muted);
    tile.classList.toggle("mic-off", !screen && (!mic || mic.muted));
    tile.classList.toggle("speaking", p.sid === session.dominantSid);
    tile.classList.toggle("reconnecting", Boolean(p.reconnecting)); // its link dropped; the server keeps its place
    // the SFU stopped sending this video to us: our downlink cannot carry it (track_switched_off)
    tile.classList.toggle("switched-off", Boolean(camera && camera.switchedOff));
    tile.querySelector(".state").textContent = p.reconnecting ? "Reconnecting…" : "Paused — weak network";
    renderQuality(tile.querySelector(".quality"), p.networkQuality);
  }

  const QUALITY_WORDS = ["broken", "bad", "poor", "fair", "good", "excellent"];

  function renderQuality(bars, level) {
    const known = Number.isInteger(level);
    bars.hidden = !known;
    bars.dataset.level = known ? String(level) : "";
    bars.setAttribute("aria-label", known ? `Network quality ${level} of 5 (${QUALITY_WORDS[level]})` : "");
    Array.from(bars.children).forEach((bar, i) => bar.classList.toggle("lit", known && i < level));
  }

  function publicationsOf(p, kind) {
    return Array.from(p.tracks.values()).filter((t) => t.kind === kind);
  }

  const shownTrack = new WeakMap(); // element -> the RemoteTrack it shows

  function show(element, track) {
    if (shownTrack.get(element) === (track || null)) return;
    const before = shownTrack.get(element);
    if (before) before.detach(element);
    shownTrack.set(element, track || null);
    if (track) track.attach(element);
    else element.srcObject = null;
  }

  function renderAudio(people) {
    const sink = $("audio-sink");
    const wanted = new Map();
    for (const p of people) {
      for (const pub of publicationsOf(p, "audio")) if (pub.track) wanted.set(pub.track.mid, { p, track: pub.track });
    }
    for (const element of Array.from(sink.children)) {
      if (!wanted.has(element.dataset.mid)) {
        show(element, null);
        element.remove();
      }
    }
    for (const [mid, { p, track }] of wanted) {
      let element = sink.querySelector(`[data-mid="${CSS.escape(mid)}"]`);
      if (!element) {
        element = document.createElement("audio");
        element.autoplay = true;
        element.dataset.mid = mid;
        sink.append(element);
      }
      element.dataset.participant = p.sid;
      show(element, track);
      route(element);
    }
  }

  function renderControls() {
    const tracks = session.room ? session.room.localParticipant.tracks : new Map();
    const mic = tracks.get("microphone");
    const cam = tracks.get("camera");
    $("mic").disabled = !mic;
    $("cam").disabled = !cam;
    $("mic").setAttribute("aria-pressed", String(Boolean(mic && mic.muted)));
    $("cam").setAttribute("aria-pressed", String(Boolean(cam && cam.muted)));
    $("mic").textContent = mic && mic.muted ? "Unmute" : "Mute";
    $("cam").textContent = cam && cam.muted ? "Camera on" : "Camera off";
    $("self").classList.toggle("video-off", !cam || cam.muted);
    const share = tracks.get("screen");
    $("share").hidden = !session.room || !navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia;
    $("share").setAttribute("aria-pressed", String(Boolean(share)));
    $("share").textContent = share ? "Stop sharing" : "Share screen";
    $("self").classList.toggle("speaking", Boolean(session.self && session.self.sid === session.dominantSid));
  }

  return { render, renderControls };
}
