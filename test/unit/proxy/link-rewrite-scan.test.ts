// rewriteJsonLinks on its own: which texts count as JSON (JSON.parse is the reference), and which
// values are links.
import assert from "node:assert/strict";
import { test } from "node:test";
import { rewriteJsonLinks } from "../../../src/proxy/link-rewrite.ts";
import type { UrlMapping } from "../../../src/proxy/rewrite.ts";

const MAPPINGS: UrlMapping[] = [[new URL("https://api.powerapps.com"), "https://proxy.example/apps"]];

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const SAMPLES = [
  "",
  " ",
  "1",
  "-0",
  "01",
  "1.",
  ".5",
  "1e",
  "1e+",
  "1E-07",
  "-",
  "+1",
  "tru",
  "true ",
  "nul",
  "nullx",
  "falsE",
  '"\\x"',
  '"\\u12g4"',
  '"\\u12"',
  '"\\uD800"',
  '"a\tb"',
  '"a',
  '"\\"',
  "[1,]",
  "[,1]",
  "[]",
  "[ ]",
  "{}",
  "{ }",
  '{"a":1,}',
  '{"a" 1}',
  '{"a":}',
  "{1:2}",
  "[1 2]",
  '{"a":1}}',
  "[[[]]]",
  "[[[]]",
  '{"a":[{"b":null}]}',
  '{"a":[{"b":null]}',
  "\ufeff1",
  "1 2",
  "\u00a01",
  '{"nextLink":"https://api.powerapps.com/x",}',
  `${"[".repeat(10_000)}${"]".repeat(10_000)}`,
];

test("what counts as JSON agrees with JSON.parse", () => {
  for (const text of SAMPLES) {
    const { result } = rewriteJsonLinks(Buffer.from(text), MAPPINGS);
    assert.equal(result !== "invalid_json", isJson(text), JSON.stringify(text.slice(0, 40)));
  }
});

test("agrees with JSON.parse on generated documents and on every one-byte change to them", () => {
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const value = (depth: number): unknown => {
    const kind = depth > 3 ? Math.floor(random() * 4) : Math.floor(random() * 6);
    if (kind === 0) return pick([0, -1.5e-7, 1234567890123, 3.25]);
    if (kind === 1) return pick(["", 'a"b\\c/\n\u0001é', "https://api.powerapps.com/p?x=1"]);
    if (kind === 2) return pick([true, false, null]);
    if (kind === 3) return pick(["x", "y"]);
    if (kind === 4) return Array.from({ length: Math.floor(random() * 3) }, () => value(depth + 1));
    const keys = ["a", "nextLink", "b@odata.nextLink", "@odata.deltaLink", "é"];
    return Object.fromEntries(
      Array.from({ length: Math.floor(random() * 3) }, () => [pick(keys), value(depth + 1)]),
    );
  };
  const mutations = '{}[],:"\\ 0e.-+tnu\n';
  let checked = 0;
  for (let doc = 0; checked < 20_000; doc++) {
    const text = JSON.stringify(value(0), null, doc % 2 === 0 ? 1 : undefined);
    for (let at = 0; at <= text.length; at++) {
      for (const edit of [
        text.slice(0, at) + text.slice(at + 1),
        text.slice(0, at) + pick([...mutations]) + text.slice(at),
      ]) {
        checked++;
        const { result } = rewriteJsonLinks(Buffer.from(edit), MAPPINGS);
        assert.equal(result !== "invalid_json", isJson(edit), JSON.stringify(edit));
      }
    }
  }
});

test("escaped keys and values are decoded before they are compared and mapped", () => {
  const text = '{"@odata.next\\u004cink":"https:\\/\\/api.powerapps.com\\/\\u0041b?q=1"}';
  const { result, body } = rewriteJsonLinks(Buffer.from(text), MAPPINGS);
  assert.equal(result, "rewritten");
  assert.equal(body.toString(), '{"@odata.next\\u004cink":"https://proxy.example/apps/Ab?q=1"}');
});

test("only string values of link keys change; without a change the same buffer comes back", () => {
  const text = Buffer.from(
    '{"nextLink":null,"@odata.nextLink":{"nextLink":"https://api.powerapps.com/inner"},"x":"https://api.powerapps.com/"}',
  );
  const { result, body } = rewriteJsonLinks(text, MAPPINGS);
  assert.equal(result, "rewritten");
  assert.equal(
    body.toString(),
    '{"nextLink":null,"@odata.nextLink":{"nextLink":"https://proxy.example/apps/inner"},"x":"https://api.powerapps.com/"}',
  );
  const other = Buffer.from('{"nextLink":"https://elsewhere.example/x"}');
  const same = rewriteJsonLinks(other, MAPPINGS);
  assert.equal(same.result, "unchanged");
  assert.equal(same.body, other);
});
