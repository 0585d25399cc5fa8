// tvapp SDK: simulcast by two tracks, the pure part (the Python SDK's tvapp.client.renditions). With
// `setCameraEnabled(true, { simulcast: true })` the page sends, next to its camera, a low rendition of the same
// source: a second RTCRtpSender on a clone of the track, at about 160x90 (as many pixels, whatever the camera's
// shape or orientation), 15 fps and 100 kb/s, announced with `rendition_of` and `layer: "low"`. The SFU sends it in
// the camera's place to a subscriber whose link cannot carry the camera, and keeps it paused (publish_constraints
// `paused`) while nobody needs it; it starts paused.

/** The low rendition's target: 160x90 (in pixels, not shape), 15 fps, 100 kb/s (as tvapp.client.renditions). */
export const RENDITION = Object.freeze({ width: 160, height: 90, framerate: 15, bitrate: 100_000, layer: "low" });

/** The constraints a rendition starts with: paused until the SFU asks for it. */
export const RENDITION_START = Object.freeze({ max_width: null, max_height: null, max_framerate: null,
  max_bitrate: null, paused: true });

/** Return the factor that brings a `width` x `height` source down to the rendition's pixel count (never up). */
export function renditionScale(width, height) {
  if (!(width > 0 && height > 0)) return 1;
  const scale = Math.sqrt((width * height) / (RENDITION.width * RENDITION.height));
  return Math.max(1, Math.round(scale * 100) / 100);
}

/**
 * Return the rendition's encoding for a `width` x `height` source under the server's `constraints` (null: as it
 * starts, paused); `sending` false (its camera muted) makes it inactive too. The constraints may only ask less than
 * the rendition's own size, frame rate and bitrate.
 */
export function renditionEncoding(width, height, constraints = RENDITION_START, sending = true) {
  const c = constraints || RENDITION_START;
  let scale = renditionScale(width, height);
  if (width > 0 && c.max_width) scale = Math.max(scale, width / c.max_width);
  if (height > 0 && c.max_height) scale = Math.max(scale, height / c.max_height);
  return {
    active: Boolean(sending) && !c.paused,
    scaleResolutionDownBy: Math.round(scale * 100) / 100,
    maxFramerate: Math.min(RENDITION.framerate, c.max_framerate || RENDITION.framerate),
    maxBitrate: Math.min(RENDITION.bitrate, c.max_bitrate || RENDITION.bitrate),
  };
}

/** Return the `publish` fields announcing `publication` (a rendition names its main track's sid), or null when a
 * rendition's main track has no sid yet (it is announced once that track is acknowledged). */
export function publishFields(publication) {
  const fields = { cid: publication.cid, kind: publication.kind, source: publication.source, name: "",
    muted: publication.muted };
  const main = publication.renditionOf;
  if (!main) return fields;
  if (!main.sid) return null;
  return { ...fields, muted: false, rendition_of: main.sid, layer: publication.layer };
}
