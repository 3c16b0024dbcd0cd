import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseOptions } from "../../../scripts/bench/options.ts";

const checkout = fileURLToPath(new URL("../../../", import.meta.url));

function parsed(args: string[]) {
  const o = parseOptions(args);
  assert.notEqual(o, "help");
  return o as Exclude<typeof o, "help">;
}

test("bench options: --help asks for the help text before anything is checked", () => {
  assert.equal(parseOptions(["--help", "--variant", "no-such-variant"]), "help");
});

test("bench options: the default run has every main section; --quick shortens the alternating turns' count", () => {
  const o = parsed([]);
  assert.deepEqual([...o.sections], ["paired", "throughput", "alternating", "latency", "streaming", "token"]);
  assert.equal(o.settings.slices, 120);
  assert.equal(o.settings.sliceMs, 500);
  assert.equal(parsed(["--quick"]).settings.slices, 8);
  assert.deepEqual(parsed(["--payloads", "1k"]).payloads, ["1k"]);
});

test("bench options: --against runs with several of paired, throughput and alternating", () => {
  const o = parsed(["--against", checkout, "--only", "paired,alternating", "--against-node-args=--a --b"]);
  assert.deepEqual([...o.sections], ["paired", "alternating"]);
  assert.equal(o.against?.dir, checkout);
  assert.deepEqual(o.against?.nodeArgs, ["--a", "--b"]);
});

test("bench options: --against refuses sections that do not compare (b) with (c) alone", () => {
  assert.throws(
    () => parseOptions(["--against", checkout, "--only", "paired,latency"]),
    /--against DIR needs/,
  );
  assert.throws(() => parseOptions(["--against", checkout]), /--against DIR needs/);
});

test("bench options: unknown sections, variants and non-positive numbers are refused", () => {
  assert.throws(() => parseOptions(["--only", "paired,alternatnig"]), /no section alternatnig/);
  assert.throws(() => parseOptions(["--variant", "no-buffer-reclaim"]), /--variant must be one of/);
  assert.throws(() => parseOptions(["--slices", "0"]), /--slices must be a positive number/);
});
