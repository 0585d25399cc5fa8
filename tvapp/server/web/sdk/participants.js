// tvapp SDK: participants and tracks as a Room shows them. Remote participants and their publications mirror the
// server's roster; a RemoteTrack is media arriving (attach it to a <video> or <audio>); the LocalParticipant
// publishes this page's camera, microphone and screen and sends data.

import { flipChoice, flipped } from "./facing.js";
import { RENDITION, RENDITION_START } from "./simulcast.js";

const SETTINGS_INTERVAL_MS = 100;

/** Media of a remote track arriving over the room's peer connection.
 *
 * Adaptive stream: a video track attached to elements watches their size (ResizeObserver, in device pixels) and
 * whether any is on screen (IntersectionObserver and the page's visibility), and tells the server (track_settings)
 * when that changes, so a hidden track is not sent to this page and its publisher sends no more than is shown.
 * `setSettings` says it by hand (and turns the watching off). Size the element by CSS: one sized by its own picture
 * would follow the picture down. */
export class RemoteTrack {
  constructor(sid, kind, mediaStreamTrack, mid) {
    this.sid = sid;
    this.kind = kind;
    this.mediaStreamTrack = mediaStreamTrack;
    this.mid = mid;
    this.elements = new Set();
    this.priority = "standard";
    this._sendSettings = null; // set by the room for a subscribed video track
    this._observed = new Map(); // element -> { width, height, intersecting }
    this._watchers = null;
    this._told = null;
    this._manual = false;
  }

  /** Show or play this track in `element` (created when omitted); return the element. */
  attach(element) {
    const el = element || document.createElement(this.kind === "video" ? "video" : "audio");
    el.autoplay = true;
    if (this.kind === "video") {
      el.playsInline = true;
      el.muted = true; // sound comes from the audio track's own element
    }
    el.srcObject = new MediaStream([this.mediaStreamTrack]);
    this.elements.add(el);
    if (this.kind === "video") this._observe(el);
    return el;
  }

  /** Take this track out of `element`, or of every element it is attached to; return those elements. */
  detach(element) {
    const els = element ? [element] : Array.from(this.elements);
    for (const el of els) {
      el.srcObject = null;
      this.elements.delete(el);
      if (this._watchers) {
        this._watchers.resize.unobserve(el);
        this._watchers.intersection.unobserve(el);
      }
      this._observed.delete(el);
    }
    this._report();
    if (this._watchers && !this._observed.size) { // nothing left to watch: let the observers go
      this._watchers.resize.disconnect();
      this._watchers.intersection.disconnect();
      document.removeEventListener("visibilitychange", this._watchers.visibility);
      this._watchers = null;
    }
    return els;
  }

  /** Tell the server how this video track is shown here: its size in pixels, visible or not, and priority
   * ("low", "standard", "high"); the elements' own size and visibility are no longer watched. */
  setSettings({ width = 0, height = 0, visible = true, priority = this.priority } = {}) {
    this._manual = true;
    this.priority = priority;
    this._tell({ width: Math.round(width), height: Math.round(height), visible: Boolean(visible), priority });
  }

  _observe(el) {
    if (typeof ResizeObserver === "undefined" || typeof IntersectionObserver === "undefined") return;
    if (!this._watchers) {
      const resize = new ResizeObserver((entries) => {
        const ratio = window.devicePixelRatio || 1;
        for (const entry of entries) {
          const seen = this._observed.get(entry.target);
          if (seen) Object.assign(seen, { width: Math.round(entry.contentRect.width * ratio),
            height: Math.round(entry.contentRect.height * ratio) });
        }
        this._report();
      });
      const intersection = new IntersectionObserver((entries) => {
        for (const entry of entries) {
          const seen = this._observed.get(entry.target);
          if (seen) seen.intersecting = entry.isIntersecting;
        }
        this._report();
      });
      const visibility = () => this._report();
      document.addEventListener("visibilitychange", visibility);
      this._watchers = { resize, intersection, visibility };
    }
    this._observed.set(el, { width: 0, height: 0, intersecting: true });
    this._watchers.resize.observe(el);
    this._watchers.intersection.observe(el);
  }

  _report() {
    if (this._manual || this.kind !== "video") return;
    let width = 0, height = 0, visible = false;
    const pageShown = typeof document === "undefined" || document.visibilityState !== "hidden";
    for (const seen of this._observed.values()) {
      if (!seen.intersecting || !pageShown || seen.width === 0 || seen.height === 0) continue;
      visible = true;
      width = Math.max(width, seen.width);
      height = Math.max(height, seen.height);
    }
    if (!this._observed.size && !this._told) return; // never attached: the server assumes full size
    this._tell({ width, height, visible, priority: this.priority });
  }

  // Only changes are sent, at most one per SETTINGS_INTERVAL_MS (the last of a burst goes out at its end), so a
  // window being dragged does not flood the signaling socket (the server debounces publish_constraints itself).
  _tell(fields) {
    const told = this._told;
    if (told && told.width === fields.width && told.height === fields.height && told.visible === fields.visible
        && told.priority === fields.priority) return;
    this._told = fields;
    if (this._timer) return; // the pending send takes the newest (a late timer must not send it a second time)
    const wait = (this._sentAt || 0) + SETTINGS_INTERVAL_MS - Date.now();
    if (wait > 0) {
      this._timer = setTimeout(() => { this._timer = null; this._flush(); }, wait);
      return;
    }
    this._flush();
  }

  _flush() {
    this._sentAt = Date.now();
    if (this._sendSettings && this._told) this._sendSettings({ sid: this.sid, ...this._told });
  }
}

/** A track another participant publishes; `track` is set while subscribed. */
export class RemoteTrackPublication {
  constructor(info) {
    this.sid = info.sid;
    this.kind = info.kind;
    this.source = info.source;
    this.name = info.name || "";
    this.muted = Boolean(info.muted);
    this.track = null;
    this.switchedOff = null; // the reason while the SFU does not send it (track_switched_off), else null
  }
}

/** Another participant in the room. */
export class RemoteParticipant {
  constructor(info) {
    this.sid = info.sid;
    this.identity = info.identity;
    this.name = info.name || "";
    this.reconnecting = Boolean(info.reconnecting);
    this.networkQuality = info.network_quality ?? null; // 0 broken .. 5 excellent (network_quality messages)
    this.tracks = new Map();
    for (const t of info.tracks || []) this.tracks.set(t.sid, new RemoteTrackPublication(t));
  }
}

/** One of this page's tracks: `cid` is the SDK's own id ("camera", "microphone", "screen", "screen_audio"). */
export class LocalTrackPublication {
  constructor(cid, kind, source, track) {
    this.cid = cid;
    this.kind = kind;
    this.source = source;
    this.track = track; // the MediaStreamTrack sent
    this.sid = null; // from the server's track_published
    this.muted = false;
    this.mid = null;
    this.constraints = null; // the server's last publish_constraints for it (video), applied to its sender
    // Simulcast by two tracks (simulcast.js): a camera's low rendition, and a rendition's camera and layer.
    this.low = null;
    this.renditionOf = null;
    this.layer = null;
  }
}

const CONSTRAINTS = {
  camera: (deviceId, facingMode = "user") => ({ video: { width: { ideal: 640 }, height: { ideal: 480 },
    frameRate: { ideal: 30 }, ...(deviceId ? { deviceId: { exact: deviceId } } : { facingMode }) } }),
  microphone: (deviceId) => ({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true,
    ...(deviceId ? { deviceId: { exact: deviceId } } : {}) } }),
};

function settingsOf(track) {
  return track && track.getSettings ? track.getSettings() : {};
}

/** This page in the room: what it publishes and the data it sends. */
export class LocalParticipant {
  constructor(room) {
    this._room = room;
    this.sid = null;
    this.identity = null;
    this.name = "";
    this.tracks = new Map(); // cid -> LocalTrackPublication
    this.devices = { camera: null, microphone: null };
    this.networkQuality = null; // 0 broken .. 5 excellent, as the SFU announces it (network_quality)
  }

  /** Publish the camera (or unmute it); with false, mute it (the publication keeps its sid). `options.simulcast`:
   * also send its low rendition (160x90@15, paused until the server needs it for a weak link; simulcast.js). */
  async setCameraEnabled(enabled, options = {}) {
    const publication = await this._setDevice("camera", "video", enabled, options.deviceId, options);
    if (publication && enabled && options.simulcast && !publication.low) this._addRendition(publication);
    return publication;
  }

  /** Publish the microphone (or unmute it); with false, mute it. */
  setMicrophoneEnabled(enabled, options = {}) {
    return this._setDevice("microphone", "audio", enabled, options.deviceId, options);
  }

  /** Share the screen (getDisplayMedia) as a "screen" track; with false, unpublish it. */
  async setScreenShareEnabled(enabled) {
    const current = this.tracks.get("screen");
    if (!enabled) {
      if (current) this._unpublish(current);
      return null;
    }
    if (current) return current;
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    const track = stream.getVideoTracks()[0];
    track.addEventListener("ended", () => {
      if (this.tracks.get("screen") === publication) this._unpublish(publication);
    });
    const publication = this._publish("screen", "video", "screen", track);
    return publication;
  }

  /** Use another camera or microphone (a deviceId from enumerateDevices); the publication keeps its sid. */
  async switchDevice(kind, deviceId) {
    const cid = kind === "video" || kind === "camera" ? "camera" : "microphone";
    this.devices[cid] = deviceId;
    const publication = this.tracks.get(cid);
    if (!publication) return null;
    const before = settingsOf(publication.track).deviceId;
    let stream;
    try {
      stream = await this._open(publication, CONSTRAINTS[cid](deviceId));
    } catch (err) {
      await this._reopen(publication, before);
      throw err;
    }
    return this._useTrack(publication, stream.getTracks()[0]);
  }

  /**
   * Flip the camera: on a phone (the track tells its facingMode) the other way round, user <-> environment, asked
   * exactly and then as a preference; otherwise, or when that cannot be met, the next camera in the device list.
   * The publication keeps its sid; its track is unchanged when there is no other camera.
   */
  async flipCamera() {
    const publication = this.tracks.get("camera");
    if (!publication) return null;
    const settings = settingsOf(publication.track);
    const capabilities = publication.track.getCapabilities ? publication.track.getCapabilities() : {};
    const devices = navigator.mediaDevices.enumerateDevices ? await navigator.mediaDevices.enumerateDevices() : [];
    const cameras = devices.filter((d) => d.kind === "videoinput").map((d) => d.deviceId);
    const choice = flipChoice({ settings, capabilities, cameras });
    let same = null; // the same camera given back by a preference after the current track had to stop
    try {
      for (const facingMode of choice.tries) {
        let stream;
        try {
          stream = await this._open(publication, CONSTRAINTS.camera(null, facingMode));
        } catch (err) {
          if (err && (err.name === "OverconstrainedError" || err.name === "ConstraintNotSatisfiedError")) continue;
          throw err;
        }
        const opened = stream.getVideoTracks()[0];
        if (opened && flipped(settings, settingsOf(opened), choice.facingMode)) {
          return await this._useTrack(publication, opened);
        }
        if (opened && !same && publication.track.readyState === "ended") same = opened;
        else for (const t of stream.getTracks()) t.stop();
      }
      if (choice.nextDeviceId) {
        if (same) same.stop(); // (a phone may not open the next camera while this one runs)
        same = null;
        return await this.switchDevice("camera", choice.nextDeviceId);
      }
      return same ? await this._useTrack(publication, same) : publication;
    } catch (err) {
      if (same) same.stop();
      await this._reopen(publication, settings.deviceId);
      throw err;
    }
  }

  // getUserMedia for a publication's next track. A phone that cannot open two cameras at once refuses with
  // NotReadableError while the current one runs: then the current track is stopped and the device asked again.
  async _open(publication, constraints) {
    try {
      return await navigator.mediaDevices.getUserMedia(constraints);
    } catch (err) {
      if (!err || err.name !== "NotReadableError" || publication.track.readyState === "ended") throw err;
      publication.track.stop();
      if (publication.low) publication.low.track.stop(); // its clone holds the camera open too
      return navigator.mediaDevices.getUserMedia(constraints);
    }
  }

  // After a switch that failed once the current track had stopped: open its device again (the publication goes on).
  async _reopen(publication, deviceId) {
    if (publication.track.readyState !== "ended" || this.tracks.get(publication.cid) !== publication) return;
    try {
      const stream = await navigator.mediaDevices.getUserMedia(CONSTRAINTS[publication.cid](deviceId || null));
      await this._useTrack(publication, stream.getTracks()[0]);
    } catch (err) {
      // no device to go back to: the track stays ended (the caller reports the first error)
    }
  }

  async _useTrack(publication, track) {
    track.enabled = !publication.muted;
    const old = publication.track;
    publication.track = track;
    const deviceId = settingsOf(track).deviceId;
    if (deviceId) this.devices[publication.cid] = deviceId;
    await this._room._replaceTrack(publication);
    old.stop();
    const low = publication.low;
    if (low) { // the rendition follows on a clone of the new track (same sid), scaled for its size
      const oldLow = low.track;
      low.track = track.clone();
      await this._room._replaceTrack(low);
      oldLow.stop();
      await this._room._applyToSender(low);
    }
    this._room._emit("local_track_changed", { publication });
    return publication;
  }

  /** Send `payload` (a string) to the room, or to the identities in `options.to`, on `options.topic`. */
  publishData(payload, options = {}) {
    const fields = { payload: String(payload), topic: options.topic || "" };
    if (options.to && options.to.length) fields.to = Array.from(options.to);
    return this._room._send("send_data", fields);
  }

  async _setDevice(cid, kind, enabled, deviceId, options = {}) {
    if (deviceId) this.devices[cid] = deviceId;
    let publication = this.tracks.get(cid);
    if (!publication && !enabled) return null;
    if (!publication) {
      const track = options.track // a MediaStreamTrack the page opened already (e.g. for its preview)
        || (await navigator.mediaDevices.getUserMedia(CONSTRAINTS[cid](this.devices[cid]))).getTracks()[0];
      publication = this._publish(cid, kind, cid, track);
      return publication;
    }
    if (deviceId && enabled) await this.switchDevice(cid, deviceId);
    this._setMuted(publication, !enabled);
    return publication;
  }

  _publish(cid, kind, source, track) {
    const publication = new LocalTrackPublication(cid, kind, source, track);
    this.tracks.set(cid, publication);
    this._room._announce(publication);
    return publication;
  }

  // The camera's low rendition: a clone of its track on a sender of its own, announced once the camera has a sid.
  _addRendition(main) {
    const low = new LocalTrackPublication(main.cid + "/" + RENDITION.layer, "video", main.source, main.track.clone());
    Object.assign(low, { renditionOf: main, layer: RENDITION.layer, constraints: { ...RENDITION_START } });
    main.low = low;
    if (main.sid) this._room._announce(low);
    return low;
  }

  /** Every publication, renditions included (`tracks` holds what the room sees: a rendition is its camera's). */
  _all() {
    const out = [];
    for (const publication of this.tracks.values()) out.push(...(publication.low ? [publication, publication.low]
      : [publication]));
    return out;
  }

  _unpublish(publication) {
    this.tracks.delete(publication.cid);
    publication.track.stop();
    if (publication.low) publication.low.track.stop(); // the server drops it with its camera
    publication.low = null;
    if (publication.sid) this._room._send("unpublish", { track_sid: publication.sid });
    this._room._emit("local_track_unpublished", { publication });
  }

  _setMuted(publication, muted) {
    publication.muted = muted;
    publication.track.enabled = !muted;
    if (publication.low) this._room._muteRendition(publication);
    if (publication.sid) this._room._send("mute", { track_sid: publication.sid, muted });
  }

  /** Stop every local track (the room calls it when it ends). */
  _stopAll() {
    for (const publication of this._all()) publication.track.stop();
    this.tracks.clear();
  }
}
