import assert from "node:assert/strict";
import { test } from "node:test";
import { safetyMargin, tokenSchedule } from "../../../src/auth/expiry.ts";
import { jwt } from "./jwt.ts";

test("safety margin: min(30 s, 10 % of the lifetime)", () => {
  assert.equal(safetyMargin(3_600_000), 30_000);
  assert.equal(safetyMargin(300_000), 30_000);
  assert.equal(safetyMargin(60_000), 6_000);
  assert.equal(safetyMargin(2_000), 200);
});

test("schedule from exp and iat: the claims win over the source's expiry", () => {
  const token = { accessToken: jwt({ iat: 1_000, exp: 4_600 }), expiresOn: 4_600_900 };
  assert.deepEqual(tokenSchedule(token, 1_000_500), {
    expiresOn: 4_600_000,
    usableUntil: 4_570_000,
    refreshAt: 4_300_000,
  });
});

test("schedule: nbf stands in for iat; without either the lifetime counts from the request", () => {
  const nbfOnly = { accessToken: jwt({ nbf: 1_000, exp: 1_060 }), expiresOn: 0 };
  assert.deepEqual(tokenSchedule(nbfOnly, 1_030_000), {
    expiresOn: 1_060_000,
    usableUntil: 1_054_000,
    refreshAt: 1_030_000,
  });
  const expOnly = { accessToken: jwt({ exp: 1_060 }), expiresOn: 0 };
  assert.equal(tokenSchedule(expOnly, 1_000_000).usableUntil, 1_054_000);
});

test("schedule of an opaque token: the source's expiry (expires_in from before the request)", () => {
  assert.deepEqual(tokenSchedule({ accessToken: "opaque", expiresOn: 60_000 }, 0), {
    expiresOn: 60_000,
    usableUntil: 54_000,
    refreshAt: 30_000,
  });
});

test("schedule: refresh_in when sent and before the margin, else min(5 min, half the lifetime)", () => {
  const hour = { accessToken: "opaque", expiresOn: 3_600_000 };
  assert.equal(tokenSchedule({ ...hour, refreshOn: 1_800_000 }, 0).refreshAt, 1_800_000);
  assert.equal(tokenSchedule(hour, 0).refreshAt, 3_300_000);
  assert.equal(tokenSchedule({ ...hour, refreshOn: 3_590_000 }, 0).refreshAt, 3_300_000);
});
