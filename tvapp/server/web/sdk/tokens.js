// tvapp SDK: access-token times and refresh timing, as tvapp/client/tokens.py: a token is refreshed a fifth of its
// lifetime before expiry (1 to 60 s early) with the refresh token, which rotates with every refresh.

/** Return a JWT's {issuedAt, expiresAt} (seconds) without checking it, or null if it has no readable times. */
export function tokenTimes(token) {
  try {
    const part = String(token).split(".")[1];
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (part.length % 4)) % 4);
    const text = typeof atob === "function" ? atob(b64) : Buffer.from(b64, "base64").toString("binary");
    const claims = JSON.parse(text);
    const iat = Number(claims.iat);
    const exp = Number(claims.exp);
    if (!Number.isFinite(iat) || !Number.isFinite(exp)) return null;
    return { issuedAt: iat, expiresAt: exp };
  } catch (err) {
    return null;
  }
}

/** Return how many seconds from `now` to wait before refreshing: a fifth of the lifetime early, 1 to 60 s early. */
export function refreshDelay(issuedAt, expiresAt, now) {
  const margin = Math.min(60, Math.max(1, (expiresAt - issuedAt) * 0.2));
  return Math.max(0, expiresAt - margin - now);
}

/** Return whether a JWT's expiry is at or before `now` (false when it has no readable times). */
export function tokenExpired(token, now) {
  const times = tokenTimes(token);
  return times !== null && times.expiresAt <= now;
}

// Refusals of a refresh token that another try cannot fix.
export const FINAL_REFRESH_STATUSES = Object.freeze(new Set([400, 401, 403, 404, 422]));
