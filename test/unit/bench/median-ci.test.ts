// The confidence interval the bench puts on a median (scripts/bench-protocol.ts): the order statistics
// of the binomial table, and the coverage it claims.
import assert from "node:assert/strict";
import { test } from "node:test";
import { medianConfidenceInterval } from "../../../scripts/bench-protocol.ts";

const ranks = (n: number) => Float64Array.from({ length: n }, (_, i) => i + 1); // value = 1-based rank

test("median CI: the binomial table's ranks", () => {
  // Published 95 % ranks (1-based): n = 6 → 1 and 6, n = 10 → 2 and 9, n = 20 → 6 and 15, n = 100 → 40 and 61.
  assert.deepEqual(medianConfidenceInterval(ranks(6)), [1, 6]);
  assert.deepEqual(medianConfidenceInterval(ranks(10)), [2, 9]);
  assert.deepEqual(medianConfidenceInterval(ranks(20)), [6, 15]);
  assert.deepEqual(medianConfidenceInterval(ranks(100)), [40, 61]);
  // Too few values for 95 % even with the extremes.
  assert.deepEqual(medianConfidenceInterval(ranks(5)), [Number.NaN, Number.NaN]);
  // A lower level gives a narrower interval.
  const [lo, hi] = medianConfidenceInterval(ranks(100), 0.5);
  assert.ok(lo > 40 && hi < 61 && lo <= 50.5 && hi >= 50.5, `${lo}..${hi}`);
});

test("median CI: covers the true median about as often as it says", () => {
  // A fixed-seed generator, so the test is repeatable: xorshift32.
  let state = 0x9e3779b9;
  const random = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const trials = 4000;
  let covered = 0;
  for (let t = 0; t < trials; t++) {
    // Exponential values (skewed, like latency differences' tails), true median ln 2.
    const sample = Float64Array.from({ length: 120 }, () => -Math.log(1 - random())).sort();
    const [lo, hi] = medianConfidenceInterval(sample);
    if (lo <= Math.LN2 && Math.LN2 <= hi) covered++;
  }
  // The order statistics' exact coverage for n = 120 is a little above 95 %; the sampling error of 4,000
  // trials is about ±0.7 points.
  const rate = covered / trials;
  assert.ok(rate >= 0.935 && rate <= 0.98, `coverage ${rate}`);
});
