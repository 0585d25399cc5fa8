// tvapp SDK: where an instant of a live event is in a <video> (pure). A live room's position is an instant of the event
// (the program date-time, seconds since the Unix epoch: tvapp/core/live.py); the <video> counts its own media time
// (hls.js's `frag.start`, or native HLS's time since `video.getStartDate()`). A map is a list of segments, each with
// its media start, duration and start instant, made from hls.js's fragments by `fragmentMap`:
// - with program date-time: each fragment's own `programDateTime` (ms);
// - without (the server's fallback, core/live.py): media sequence x target duration for the first fragment of the
//   window, then the durations before each one.
// `toMedia` and `toInstant` convert through the segment that holds the time (beyond the map, through the nearest one).

/**
 * Return the map of hls.js fragments ({start, duration, programDateTime, sn}): [{start, duration, instant}], sorted by
 * start. `targetDuration` is the playlist's (for the fallback when a fragment has no program date-time).
 */
export function fragmentMap(fragments, targetDuration) {
  const usable = (fragments || []).filter((f) => f && Number.isFinite(f.start) && Number.isFinite(f.duration))
    .slice().sort((a, b) => a.start - b.start);
  if (!usable.length) return [];
  const withPdt = usable.every((f) => Number.isFinite(f.programDateTime));
  if (withPdt) return usable.map((f) => ({ start: f.start, duration: f.duration, instant: f.programDateTime / 1000 }));
  const first = usable[0];
  if (!Number.isFinite(first.sn) || !(targetDuration > 0)) return [];
  let instant = first.sn * targetDuration;
  return usable.map((f) => {
    const entry = { start: f.start, duration: f.duration, instant };
    instant += f.duration;
    return entry;
  });
}

/** Return the map of a native HLS video whose media time 0 is the instant `startDate` (ms), or [] if unknown. */
export function nativeMap(startDate) {
  const ms = Number(startDate);
  return Number.isFinite(ms) && ms > 0 ? [{ start: 0, duration: Infinity, instant: ms / 1000 }] : [];
}

function holding(map, value, key) {
  // The segment whose [key, key + duration) holds value; the first or last one outside the map.
  let chosen = map[0];
  for (const entry of map) {
    if (entry[key] <= value) chosen = entry;
    else break;
  }
  return chosen;
}

/** Return the video's media time of an event instant (seconds), or null when the map is empty. */
export function toMedia(map, instant) {
  if (!map.length) return null;
  const entry = holding(map, instant, "instant");
  return entry.start + (instant - entry.instant);
}

/** Return the event instant of a media time (seconds), or null when the map is empty. */
export function toInstant(map, mediaTime) {
  if (!map.length) return null;
  const entry = holding(map, mediaTime, "start");
  return entry.instant + (mediaTime - entry.start);
}
