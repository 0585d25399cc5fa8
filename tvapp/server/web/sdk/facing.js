// tvapp SDK: the pure rules of camera flip on phones. Phones expose their cameras by `facingMode` ("user" is the
// front camera, "environment" the back one); their device labels and order are not reliable. So a flip asks for the
// other facing mode when the current track tells its own (getSettings, else getCapabilities), exactly first and as
// a preference when that cannot be met, and only then falls back to the next camera in the device list (a desktop,
// or a browser that says nothing about facing). LocalParticipant.flipCamera does the getUserMedia side.

/** Return the facing mode the opposite way: "user" -> "environment", anything else -> "user". */
export function otherFacing(mode) {
  return mode === "user" ? "environment" : "user";
}

/** Return the facing mode a camera track reports (settings first, else its only capability), or null. */
export function facingOf(settings, capabilities) {
  if (settings && typeof settings.facingMode === "string" && settings.facingMode) return settings.facingMode;
  const listed = capabilities && Array.isArray(capabilities.facingMode) ? capabilities.facingMode : [];
  return listed.length > 0 && typeof listed[0] === "string" ? listed[0] : null;
}

/**
 * Return what a camera flip asks for: `facingMode` (the wanted one, or null when the track tells none), `tries`
 * (the facingMode constraints to try in order: exact, then ideal) and `nextDeviceId` (the camera after the current
 * one in `cameras`, the videoinput deviceIds, wrapping round; null when there is no other camera).
 */
export function flipChoice({ settings = {}, capabilities = {}, cameras = [] } = {}) {
  const current = facingOf(settings, capabilities);
  const deviceId = (settings && settings.deviceId) || "";
  const others = cameras.filter((id) => id && id !== deviceId);
  let nextDeviceId = null;
  if (others.length > 0) {
    const at = cameras.indexOf(deviceId);
    nextDeviceId = at < 0 ? others[0] : cameras.slice(at + 1).concat(cameras.slice(0, at)).find((id) => id !== deviceId);
  }
  if (current === null) return { facingMode: null, tries: [], nextDeviceId };
  const wanted = otherFacing(current);
  return { facingMode: wanted, tries: [{ exact: wanted }, { ideal: wanted }], nextDeviceId };
}

/** Return true when the track now open (`after`, its settings) is a flip from `before`'s towards `wanted`. */
export function flipped(before, after, wanted) {
  if (after && after.facingMode) return after.facingMode === wanted;
  return Boolean(after && after.deviceId && after.deviceId !== (before && before.deviceId));
}

/** Return true when a self view of this camera should be mirrored: any camera but one facing away from the user. */
export function mirrored(settings, capabilities) {
  const facing = facingOf(settings, capabilities);
  return facing === null || facing === "user";
}
