import { test } from "node:test";
import assert from "node:assert/strict";
import { tokenTimes, refreshDelay, tokenExpired } from "../../tvapp/server/web/sdk/tokens.js";

const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
const jwt = (claims) => `${b64url({ alg: "HS256" })}.${b64url(claims)}.sig`;

test("tokenTimes reads iat and exp without checking the signature", () => {
  assert.deepEqual(tokenTimes(jwt({ iat: 100, exp: 700, sub: "a" })), { issuedAt: 100, expiresAt: 700 });
});

test("tokenTimes is null for garbage or a token without times", () => {
  for (const bad of ["", "abc", "a.b.c", jwt({ sub: "x" }), jwt({ iat: "x", exp: 5 })]) assert.equal(tokenTimes(bad), null);
});

test("refresh a fifth of the lifetime early, at least 1 s and at most 60 s early (as tokens.py)", () => {
  assert.equal(refreshDelay(0, 600, 0), 540); // 600 s token: a fifth is 120 s, capped at 60 s
  assert.equal(refreshDelay(0, 100, 0), 80); // 20 s early
  assert.equal(refreshDelay(0, 2, 0), 1); // at least 1 s early
  assert.equal(refreshDelay(0, 100, 90), 0); // already late: now
});

test("tokenExpired compares exp with now", () => {
  const token = jwt({ iat: 0, exp: 50 });
  assert.equal(tokenExpired(token, 49), false);
  assert.equal(tokenExpired(token, 50), true);
  assert.equal(tokenExpired("garbage", 1e12), false);
});
