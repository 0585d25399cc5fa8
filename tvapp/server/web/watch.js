// tvapp phone web client, watch together: the room's shared content in a <video> kept on the room's timeline. The
// keeping (clock, timeline, steering on presented frames with a 15 ms deadband, learnt start and seek lags, stall
// reports) is the web SDK's SyncedVideo (/sdk/syncvideo.js); this module is the page around it: title, status,
// host controls, "tap for sound". app.js owns the websocket: it calls joined(), handle() for pong and playback_state,
// and left(). Read-only debug state for tests is at window.tvappWatch.

import { createSyncedVideo } from "/sdk/syncvideo.js";
import { positionAt } from "/sdk/steering.js";

{
  const SKIP_S = 10;
  const $ = (id) => document.getElementById(id);

  function clockText(seconds) {
    const whole = Math.max(0, Math.floor(seconds));
    const h = Math.floor(whole / 3600);
    const m = Math.floor((whole % 3600) / 60);
    const s = String(whole % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  function create({ send, nameOf }) {
    const video = $("watch-video");
    const sync = createSyncedVideo(video, { send, onChange: render });

    function canControl() {
      return sync.host || Boolean(sync.state && sync.state.control === "everyone");
    }

    function statusText(state) {
      if (state.waiting_for.length) {
        const names = state.waiting_for.map((identity) => nameOf(identity));
        return `Waiting for ${names.join(", ")}…`;
      }
      if (state.live) {
        // A live position is an instant of the event: say how far behind live the room is instead.
        const behind = typeof state.delay === "number" ? ` · ${Math.round(state.delay)} s delay` : "";
        // No program date-time: the core times segments by media sequence x target duration (core/live.py).
        const timing = state.program_date_time === false ? " · timed by segment numbers" : "";
        return `${state.playing ? "LIVE" : "Paused (live)"}${behind}${timing}`;
      }
      const where = clockText(sync.lastTarget === null ? state.position : sync.lastTarget);
      const of = typeof state.duration === "number" ? ` / ${clockText(state.duration)}` : "";
      return `${state.playing ? "Playing" : "Paused"} · ${where}${of}`;
    }

    function render() {
      const state = sync.state;
      const content = state ? state.content : "";
      const control = sync.joinedRoom && canControl();
      $("watch").hidden = !sync.joinedRoom || (!content && !control);
      $("watch-stage").hidden = !content;
      video.hidden = !sync.src || Boolean(sync.unplayable);
      $("watch-tv").hidden = !sync.unplayable;
      $("watch-tv").textContent = sync.unplayable === "error"
        ? "This phone cannot play this video. Playing on the TV."
        : "Playing on the TV";
      $("watch-sound").hidden = !sync.soundBlocked || !sync.src || Boolean(sync.unplayable);
      $("watch-title").textContent = content ? state.title || content : "";
      $("watch-status").textContent = content ? statusText(state) : "";
      $("watch-controls").hidden = !control || !content;
      $("watch-load").hidden = !control;
      $("watch-toggle").textContent = state && state.playing ? "Pause" : "Play";
      $("watch-live").hidden = !(state && state.live); // "back to live": the room's live point again
    }

    function command(fields) {
      send({ type: "playback", ...fields });
    }

    function skip(seconds) {
      const state = sync.state;
      if (!state || !state.content) return;
      const now = sync.serverNow();
      let position = positionAt(state, now === null ? state.at : now) + seconds;
      if (typeof state.duration === "number") position = Math.min(position, state.duration);
      command({ action: "seek", position: Math.round(Math.max(0, position) * 1000) / 1000 });
    }

    function wire() {
      $("watch-sound").addEventListener("click", () => sync.unmute());
      $("watch-toggle").addEventListener("click", () => {
        command({ action: sync.state && sync.state.playing ? "pause" : "play" });
      });
      $("watch-back").addEventListener("click", () => skip(-SKIP_S));
      $("watch-forward").addEventListener("click", () => skip(SKIP_S));
      $("watch-stop").addEventListener("click", () => command({ action: "stop" }));
      $("watch-live").addEventListener("click", () => command({ action: "live" }));
      $("watch-load").addEventListener("submit", (event) => {
        event.preventDefault();
        const content = $("watch-url").value.trim();
        if (!/^https?:\/\//i.test(content) && !content.startsWith("/")) {
          $("watch-url").setCustomValidity("A video URL (https://…) or a path starting with /");
          $("watch-url").reportValidity();
          return;
        }
        $("watch-url").setCustomValidity("");
        command({ action: "load", content, position: 0, play: true });
        $("watch-url").value = "";
      });
      $("watch-url").addEventListener("input", () => $("watch-url").setCustomValidity(""));
      setInterval(() => {
        if (sync.state && sync.state.content) $("watch-status").textContent = statusText(sync.state);
      }, 1000);
    }

    wire();
    const status = sync.debug.status;
    const debug = Object.freeze({ ...sync.debug, status: () => ({ ...status(), control: canControl() }) });
    Object.defineProperty(window, "tvappWatch", { value: debug, writable: false, configurable: false });
    render();
    return Object.freeze({ joined: sync.joined, handle: sync.handle, left: sync.left });
  }

  window.TvappWatch = Object.freeze({ create });
}
