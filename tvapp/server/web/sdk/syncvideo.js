// tvapp SDK: a <video> kept on the room's timeline (moved here from the phone page's watch.js, which now drives this).
// Clock: NTP-style ping/pong over signaling (steering.js's RoomClock). Timeline: tvapp/core/playback.py
// (PlaybackState.position_at). Steering: every 200 ms the video's position is compared with the timeline; far off it
// seeks, close it nudges playbackRate (steering.js's steer(): a 15 ms deadband). The position is what the screen
// shows when the browser says so (requestVideoFrameCallback: each presented frame's middle against the timeline at its
// display time), else video.currentTime, which runs ahead of or behind the screen by the compositor's delay. How long a
// start takes to get the video moving (a resume after a pause, a fresh start after a load or a seek) and how late a
// seek while playing lands are learnt from the error just after each one: the next start begins that much before
// `at`, the next seek aims that much ahead. A stall is reported (`buffering`) so the room can wait for this screen.
//
// createSyncedVideo(video, {send, clock, base, onChange}): `send(message)` sends a signaling message object;
// `clock` (optional) returns the Room's RoomClock (else this controller pings by itself); `base` prefixes /media/
// paths (the core's URL when the page is elsewhere); `onChange()` is called when what a page shows may change.
// The owner calls joined(joinedMsg), handle(msg) for pong and playback_state, tick() after a clock update, left().
//
// Live content (playback_state.live): the room's position is an instant of the event (program date-time, seconds
// since the epoch). Native HLS plays it where the browser has it and says where media time 0 is
// (`video.getStartDate()`, Safari); elsewhere hls.js (vendored at /static/vendor/hls.light.min.mjs, loaded on first
// use; `hls` option: a Hls class of one's own) feeds the <video> through Media Source Extensions, with its worker off
// (`enableWorker: false`: the core's CSP allows no blob: workers) and its own live catch-up off (the room steers).
// livemap.js maps instants to media time through each fragment's program date-time (or, without it, media sequence
// x target duration, as the server does); the steering is the same as for files, on media time.

import { RoomClock, moving, positionAt, steer as steerDecision, learnFrame, frameError, measuredError, localNow,
  SEEK_THRESHOLD_S } from "./steering.js";
import { fragmentMap, nativeMap, toInstant, toMedia } from "./livemap.js";

const TICK_MS = 200;
// First guesses of the lags (seconds), then learnt: how much before `at` to call play() to resume after a pause, or
// to start after a load or a seek (the browser primes its audio first); how far ahead to seek while playing.
const FIRST_LAGS = { resume: 0.0, fresh: 0.08, seek: 0.15 };
const MAX_LAG_S = 1.0;
const LAG_SETTLE_MS = 500; // measure a seek's or start's lag this long after the video runs (its clock stutters first)
const TIMER_SLACK_S = 0.005; // a timer may fire a little early
const PAUSED_TOLERANCE_S = 0.04;
const SEEK_LANDING_MS = 1500;
const STALL_REPORT_MS = 300;
const FRAMES_KEPT = 600;
const READY_AHEAD_S = 0.5; // buffered ahead of the position before a stalled phone says it is ready again
const HAVE_METADATA = 1;
const HAVE_FUTURE_DATA = 3;
const HAVE_ENOUGH_DATA = 4;
const HLS_URL = "/static/vendor/hls.light.min.mjs";
const HLS_MIME = "application/vnd.apple.mpegurl";
// hls.js as a follower: no worker (CSP), no jumping to the live edge or speeding up on its own (hls.js copies its
// config through JSON: a large number, not Infinity).
const HLS_CONFIG = Object.freeze({
  enableWorker: false, lowLatencyMode: false, liveSyncDurationCount: 3, liveMaxLatencyDurationCount: 1e6,
  maxLiveSyncPlaybackRate: 1, liveDurationInfinity: false, startFragPrefetch: true,
});


/** Where a browser can open a content: an http(s) URL or a file the core serves at /media/ (else null: a TV path). */
export function playableUrl(content, base = "") {
  if (/^https?:\/\//i.test(content)) return content;
  if (content.startsWith("/media/")) return base + content;
  return null;
}

/** Keep `video` on the room's timeline; return its controller. */
export function createSyncedVideo(video, { send, clock: roomClock = null, base = "", onChange = () => {}, hls = null,
  hlsUrl = null }) {
  // The room's clock: the Room's own (it pings) when given, else this controller's, fed by its own pings.
  const clock = roomClock ? { get current() { return roomClock(); } } : { current: new RoomClock() };
  const frames = [];
  const w = {
    state: null,
    joined: false,
    host: false,
    src: null, // the URL the video element has, or null
    unplayable: null, // why this phone cannot play the content, or null
    pingTimer: null,
    tickTimer: null,
    startTimer: null,
    stallTimer: null,
    lastTarget: null,
    lastError: null,
    correcting: false,
    rate: 1,
    seeks: 0,
    lastSeekAt: -Infinity,
    lags: { ...FIRST_LAGS },
    learnt: { resume: 0, fresh: 0, seek: 0 }, // how many measurements each lag has had
    fresh: true, // the next start follows a load or a seek
    startedLead: 0, // the lag the running video was started with
    measuring: null, // "resume", "fresh" or "seek": the lag to learn once the video runs again
    runningSince: null, // performance.now() of the last "playing" event
    log: [], // {t, target, error, rate} per tick while content plays, for tests
    notReadySince: null,
    stallReported: false,
    durationReported: false,
    playPending: false,
    soundBlocked: false,
    reports: [], // buffering messages sent, for tests
    frameHandle: null,
    presented: [], // errors of the frames presented since the last tick (seconds, a frame's middle)
    lastMediaTime: null,
    frameS: null, // the content's frame duration, learnt from presented frames
    live: false, // the content is a live stream: positions are event instants, mapped through `map`
    map: [], // livemap.js's map of the live stream's segments (media time <-> event instant)
    hls: null, // the hls.js instance playing a live stream, or null (native or a file)
    engine: null, // "hls.js" or "native" while a live stream plays
    liveError: null, // why a live stream does not play, or null
  };

  // -- clock pings --

  function ping() {
    w.pingTimer = null;
    if (!w.joined || roomClock) return;
    send({ type: "ping", t0: clock.current.stamp() });
    w.pingTimer = setTimeout(ping, Math.min(clock.current.nextPingMs(), w.pingCeilingMs));
  }

  // -- incoming --

  function joined(msg) {
    left();
    w.joined = true;
    w.host = Boolean(msg.grants && msg.grants.host);
    w.pingCeilingMs = Math.max(100, (Number(msg.ping_interval) || 10) * 1000);
    if (!roomClock) clock.current = new RoomClock();
    ping();
    w.tickTimer = setInterval(tick, TICK_MS);
    onChange();
  }

  function handle(msg) {
    if (msg.type === "pong") {
      if (clock.current.pong(msg, localNow()) && w.state) tick();
      return true;
    }
    if (msg.type === "playback_state") {
      onState(msg);
      return true;
    }
    return false;
  }

  function onState(msg) {
    if (!w.joined) return;
    const previous = w.state;
    if (previous && previous.content === msg.content && msg.seq < previous.seq) return; // a stale copy
    w.state = { ...msg, waiting_for: Array.isArray(msg.waiting_for) ? msg.waiting_for.slice() : [] };
    if (!previous || previous.content !== msg.content) openContent(msg.content, Boolean(msg.live));
    w.correcting = false;
    scheduleStart();
    onChange();
    tick();
  }

  function left() {
    w.joined = false;
    for (const name of ["pingTimer", "startTimer", "stallTimer"]) {
      clearTimeout(w[name]);
      w[name] = null;
    }
    clearInterval(w.tickTimer);
    w.tickTimer = null;
    w.state = null;
    openContent("");
    onChange();
  }

  // -- the video element --

  function openContent(content, live = false) {
    const url = content ? playableUrl(content, base) : null;
    w.live = Boolean(url && live);
    w.map = [];
    w.unplayable = content && !url ? "tv" : null;
    w.lastTarget = null;
    w.lastError = null;
    w.correcting = false;
    w.notReadySince = null;
    w.stallReported = false;
    w.durationReported = false;
    w.playPending = false;
    w.measuring = null;
    w.fresh = true;
    setRate(1);
    if (url === w.src && !w.live) return;
    w.src = url;
    closeHls();
    if (url && w.live) {
      openLive(url);
    } else if (url) {
      video.src = url;
    } else {
      video.pause();
      video.removeAttribute("src");
    }
    video.load();
  }

  // -- live streams --

  function openLive(url) {
    if (video.canPlayType(HLS_MIME) && typeof video.getStartDate === "function") {
      w.engine = "native";
      video.src = url;
      video.load();
      return;
    }
    w.engine = "hls.js";
    video.removeAttribute("src");
    const loading = hls ? Promise.resolve(hls) : import(hlsUrl || new URL(HLS_URL, import.meta.url).href)
      .then((module) => module.default);
    loading.then((Hls) => {
      if (w.src !== url || !w.live || w.hls) return; // the room moved on meanwhile
      if (!Hls.isSupported()) {
        w.unplayable = "error";
        onChange();
        return;
      }
      const player = new Hls({ ...HLS_CONFIG });
      w.hls = player;
      const remap = (_event, data) => {
        const details = data && data.details;
        if (details && w.hls === player) w.map = fragmentMap(details.fragments, details.targetduration);
        tick();
      };
      player.on(Hls.Events.LEVEL_LOADED, remap);
      player.on(Hls.Events.LEVEL_UPDATED, remap);
      player.on(Hls.Events.ERROR, (_event, data) => {
        if (data && data.fatal && w.hls === player) {
          w.liveError = `hls.js: ${data.details}`;
          onMediaError();
        }
      });
      player.loadSource(url);
      player.attachMedia(video);
    }).catch((err) => {
      w.liveError = String(err && err.message ? err.message : err);
      closeHls();
      w.unplayable = "error";
      onChange();
    });
  }

  function closeHls() {
    if (w.hls) w.hls.destroy();
    w.hls = null;
    w.engine = null;
  }

  function liveMap() {
    if (w.engine === "native" && !w.map.length) w.map = nativeMap(video.getStartDate().getTime());
    return w.map;
  }

  // The video's media time of a room position (an event instant when live), or null while a live map is unknown.
  function mediaOf(position) {
    return w.live ? toMedia(liveMap(), position) : position;
  }

  // The room position (an event instant when live) of a media time, or null while a live map is unknown.
  function positionOf(mediaTime) {
    return w.live ? toInstant(liveMap(), mediaTime) : mediaTime;
  }

  function setRate(rate) {
    w.rate = rate;
    if (video.playbackRate !== rate) video.playbackRate = rate;
  }

  function seek(position) {
    w.seeks += 1;
    w.fresh = true;
    w.lastSeekAt = performance.now();
    w.correcting = false;
    setRate(1);
    video.currentTime = position;
    w.presented = [];
  }

  function startPlaying() {
    if (w.playPending || !video.paused) return;
    w.playPending = true;
    video.play().then(() => {
      w.playPending = false;
    }, (err) => {
      w.playPending = false;
      if (err && err.name === "NotAllowedError" && !video.muted) {
        // Autoplay with sound refused (no gesture yet): play muted and offer the sound on a tap.
        video.muted = true;
        w.soundBlocked = true;
        onChange();
        startPlaying();
      } else if (err && err.name === "NotAllowedError") {
        w.soundBlocked = true; // not even muted: the tap starts it
        onChange();
      }
    });
  }

  function scheduleStart() {
    // A playing state takes effect at `at` (a little ahead): start right then (less the learnt start lag) rather
    // than at the next tick.
    clearTimeout(w.startTimer);
    w.startTimer = null;
    const state = w.state;
    const localAt = state ? clock.current.localTimeOf(state.at) : null;
    if (!moving(state) || localAt === null) return;
    const wait = (localAt - startLead() - localNow()) * 1000;
    if (wait > 0) w.startTimer = setTimeout(tick, wait);
  }

  // -- steering: the one place that decides what the video does --

  function startLead() {
    // How long before `at` the video starts: the lag it was started with while it runs, else the next start's.
    if (!video.paused) return w.startedLead;
    return w.lags[w.fresh ? "fresh" : "resume"];
  }

  function tick() {
    const state = w.state;
    if (!state || !w.src || w.unplayable || video.readyState < HAVE_METADATA) return;
    const now = clock.current.serverNow();
    if (now === null) return; // no clock yet: the burst answers within a few hundred ms
    const target = positionAt(state, now);
    const targetMedia = mediaOf(target);
    if (targetMedia === null) return; // live: where the room is in this video is not known yet
    const ended = typeof state.duration === "number" && target >= state.duration;
    // The video starts a little before `at`: play() takes that long to get it moving.
    const runs = moving(state) && now >= state.at - startLead() - TIMER_SLACK_S && !ended;
    w.lastTarget = target;
    if (runs) checkStall();
    const presented = w.presented;
    w.presented = [];
    if (video.seeking) return;
    w.lastError = measuredError(presented, video.currentTime, targetMedia, video.paused);
    if (!runs) {
      if (!video.paused) video.pause();
      setRate(1);
      w.correcting = false;
      w.notReadySince = null;
      w.measuring = null;
      if (Math.abs(w.lastError) > PAUSED_TOLERANCE_S) seek(targetMedia);
      reportReady();
      return;
    }
    w.log.push({ t: now, target, error: w.lastError, rate: w.rate });
    if (w.log.length > FRAMES_KEPT) w.log.shift();
    if (video.paused) {
      if (Math.abs(w.lastError) > SEEK_THRESHOLD_S) {
        seek(targetMedia + w.lags.seek); // late: jump to where the timeline will be once the video runs
        w.measuring = "seek";
      } else if (!w.measuring) {
        w.measuring = w.fresh ? "fresh" : "resume";
      }
      w.startedLead = w.lags[w.measuring === "seek" ? "fresh" : w.measuring];
      startPlaying();
    } else if (now >= state.at && !learnLag()) {
      const landing = performance.now() - w.lastSeekAt < SEEK_LANDING_MS && video.readyState < HAVE_FUTURE_DATA;
      if (!landing) steer(targetMedia);
    }
    reportReady();
  }

  // Once the video has run for a moment after a seek or a start, its error says how late that one landed: aim
  // the next one that much further ahead. Returns true when it measured (the error is then left to the next tick).
  function learnLag() {
    if (!w.measuring || w.runningSince === null || video.readyState < HAVE_FUTURE_DATA) return false;
    if (performance.now() - w.runningSince < LAG_SETTLE_MS) return true;
    const key = w.measuring;
    w.measuring = null;
    if (Math.abs(w.lastError) >= SEEK_THRESHOLD_S) return false; // something else went on: learn nothing
    const better = Math.max(0, Math.min(MAX_LAG_S, w.lags[key] - w.lastError));
    w.lags[key] = w.learnt[key] ? (w.lags[key] + better) / 2 : better; // the first guess was only a guess
    w.learnt[key] += 1;
    return false;
  }

  function steer(target) {
    const decision = steerDecision(w.lastError, w.correcting);
    if (decision.action === "seek") {
      seek(target + w.lags.seek);
      w.measuring = "seek";
      return;
    }
    w.correcting = decision.correcting;
    // The room's own rate (a live room catching up or slowing down to its live point) times the correction.
    setRate(decision.rate * ((w.state && w.state.rate) || 1));
  }

  // -- buffering reports --

  function checkStall() {
    // Called while the timeline runs: a video that has not had enough data for STALL_REPORT_MS holds the room.
    if (video.readyState >= HAVE_FUTURE_DATA && !video.seeking) {
      w.notReadySince = null;
      return;
    }
    const since = w.notReadySince === null ? (w.notReadySince = performance.now()) : w.notReadySince;
    if (!w.stallReported && performance.now() - since >= STALL_REPORT_MS) {
      w.stallReported = true;
      report({ stalled: true, position: round(positionOf(video.currentTime) ?? video.currentTime) });
    }
  }

  function reportReady() {
    if (w.stallReported && ready()) {
      w.stallReported = false;
      w.notReadySince = null;
      report({ stalled: false, position: round(positionOf(video.currentTime) ?? video.currentTime) });
    }
  }

  function ready() {
    // Enough to play on without stalling again at once: the browser says so, or half a second is buffered.
    if (video.seeking || video.readyState < HAVE_FUTURE_DATA) return false;
    if (video.readyState >= HAVE_ENOUGH_DATA) return true;
    const here = video.currentTime;
    const end = Number.isFinite(video.duration) ? video.duration : Infinity;
    for (let i = 0; i < video.buffered.length; i += 1) {
      if (video.buffered.start(i) <= here + 0.01 && here < video.buffered.end(i)) {
        return video.buffered.end(i) >= Math.min(end - 0.05, here + READY_AHEAD_S);
      }
    }
    return false;
  }

  function report(fields) {
    const message = { type: "buffering", ...fields };
    w.reports.push({ ...message, at: localNow() });
    send(message);
  }

  function round(seconds) {
    return Math.round(seconds * 1000) / 1000;
  }

  function onWaiting() {
    if (!w.state || !w.src) return;
    clearTimeout(w.stallTimer);
    w.stallTimer = setTimeout(tick, STALL_REPORT_MS + 10);
  }

  function onMetadata() {
    if (!w.live && !w.durationReported && Number.isFinite(video.duration) && video.duration > 0 && w.state) {
      w.durationReported = true;
      report({ stalled: false, duration: round(video.duration) });
    }
    tick();
  }

  function onMediaError() {
    if (!w.src) return;
    w.unplayable = "error";
    w.playPending = false;
    onChange();
  }

  // -- frames shown, for tests: which media time was on screen when --

  // A presented frame's error: its middle (media time plus half a frame) against the timeline at its display time.
  function notePresented(meta) {
    const step = w.lastMediaTime === null ? null : meta.mediaTime - w.lastMediaTime;
    w.lastMediaTime = meta.mediaTime;
    w.frameS = learnFrame(w.frameS, step);
    const state = w.state;
    const serverAt = clock.current.serverNow();
    const position = positionOf(meta.mediaTime);
    if (!moving(state) || serverAt === null || video.seeking || video.paused || w.frameS === null) return;
    if (position === null) return;
    const displayServer = serverAt + (performance.timeOrigin + meta.expectedDisplayTime) / 1000 - localNow();
    // The error is in seconds of either clock (media time and event instants run alike within a segment).
    w.presented.push(frameError(state, position, w.frameS, displayServer));
  }

  function onFrame(now, meta) {
    if (w.detached) return;
    notePresented(meta);
    frames.push({
      wall: performance.timeOrigin + now,
      displayWall: performance.timeOrigin + meta.expectedDisplayTime,
      expectedDisplayTime: meta.expectedDisplayTime,
      mediaTime: meta.mediaTime,
      position: positionOf(meta.mediaTime), // the room position shown: the media time, or an event instant (live)
      presentedFrames: meta.presentedFrames,
      rate: video.playbackRate,
    });
    if (frames.length > FRAMES_KEPT) frames.splice(0, frames.length - FRAMES_KEPT);
    w.frameHandle = video.requestVideoFrameCallback(onFrame);
  }

  function wire() {
    video.playsInline = true;
    video.preload = "auto";
    video.addEventListener("loadedmetadata", onMetadata);
    for (const name of ["canplay", "canplaythrough"]) video.addEventListener(name, tick);
    for (const name of ["playing", "seeked"]) {
      video.addEventListener(name, () => {
        if (!video.paused) {
          w.runningSince = performance.now();
          w.fresh = false;
        }
        tick();
      });
    }
    for (const name of ["pause", "seeking", "waiting"]) {
      video.addEventListener(name, () => {
        w.runningSince = null;
      });
    }
    for (const name of ["waiting", "stalled"]) video.addEventListener(name, onWaiting);
    video.addEventListener("error", onMediaError);
    if ("requestVideoFrameCallback" in video) w.frameHandle = video.requestVideoFrameCallback(onFrame);
  }

  function debug() {
    return Object.freeze({
      offset: () => clock.current.offset,
      delay: () => clock.current.delay,
      exchanges: () => clock.current.exchanges,
      serverNow: () => clock.current.serverNow(),
      target: () => w.lastTarget,
      error: () => w.lastError,
      state: () => (w.state ? { ...w.state, waiting_for: w.state.waiting_for.slice() } : null),
      status: () => ({
        src: w.src, unplayable: w.unplayable, live: w.live, engine: w.engine, mapped: w.map.length,
        liveError: w.liveError, rate: w.rate, seeks: w.seeks, correcting: w.correcting,
        lags: { ...w.lags },
        stallReported: w.stallReported, soundBlocked: w.soundBlocked, muted: video.muted, paused: video.paused,
        currentTime: video.currentTime, readyState: video.readyState, seeking: video.seeking, host: w.host,
      }),
      reports: () => w.reports.map((r) => ({ ...r })),
      log: () => w.log.slice(),
      frames,
    });
  }

  /** Play with sound after a user gesture (autoplay with sound was refused: soundBlocked). */
  function unmute() {
    video.muted = false;
    w.soundBlocked = false;
    onChange();
    startPlaying();
  }

  /** Stop steering this video for good. */
  function detach() {
    left();
    closeHls();
    if (w.frameHandle !== null && "cancelVideoFrameCallback" in video) video.cancelVideoFrameCallback(w.frameHandle);
    w.frameHandle = null;
    w.detached = true;
  }

  wire();
  return Object.freeze({
    joined, handle, left, tick: () => { if (w.state) tick(); }, unmute, detach, debug: debug(), video,
    get state() { return w.state; },
    get joinedRoom() { return w.joined; },
    get host() { return w.host; },
    get src() { return w.src; },
    get unplayable() { return w.unplayable; },
    get soundBlocked() { return w.soundBlocked; },
    get lastTarget() { return w.lastTarget; },
    get lastError() { return w.lastError; },
    get seeks() { return w.seeks; },
    serverNow: () => clock.current.serverNow(),
  });
}
