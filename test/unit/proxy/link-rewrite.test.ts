import assert from "node:assert/strict";
import { createServer, get, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import {
  type LinkRewriteResult,
  rewriteLinksIn,
  sendWithLinkRewrite,
} from "../../../src/proxy/link-rewrite.ts";
import type { UrlMapping } from "../../../src/proxy/rewrite.ts";

const MAPPINGS: UrlMapping[] = [[new URL("https://api.powerapps.com"), "https://proxy.example/apps"]];

test("links are rewritten at any depth; other strings are left alone", () => {
  const doc = {
    "@odata.nextLink": "https://api.powerapps.com/x?$skiptoken=1",
    value: [{ nextLink: "https://api.powerapps.com/y", name: "https://api.powerapps.com/not-a-link" }],
    other: { "@odata.deltaLink": "https://elsewhere.example/z" },
    lower: { "@odata.nextlink": "https://api.powerapps.com/lower" },
  };
  assert.equal(rewriteLinksIn(doc, MAPPINGS), true);
  assert.equal(doc["@odata.nextLink"], "https://proxy.example/apps/x?$skiptoken=1");
  assert.equal(doc.value[0]!.nextLink, "https://proxy.example/apps/y");
  assert.equal(doc.value[0]!.name, "https://api.powerapps.com/not-a-link");
  assert.equal(doc.other["@odata.deltaLink"], "https://elsewhere.example/z");
  assert.equal(doc.lower["@odata.nextlink"], "https://proxy.example/apps/lower", "lower-case spelling too");
});

/** Serves `body` from an upstream and relays it through sendWithLinkRewrite with the given cap. */
async function relay(
  t: { after(fn: () => void): void },
  body: string,
  contentType: string,
  maxBytes: number,
): Promise<{ text: string; result: LinkRewriteResult }> {
  const upstream = createServer((_req, res) => {
    res.writeHead(200, { "content-type": contentType }); // chunked: no content-length
    for (let i = 0; i < body.length; i += 1000) res.write(body.slice(i, i + 1000));
    res.end();
  }).listen(0, "127.0.0.1");
  let result: LinkRewriteResult | undefined;
  const front = createServer((_req, res) => {
    get(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}/`, (up: IncomingMessage) => {
      sendWithLinkRewrite(
        up,
        res,
        200,
        { ...up.headers },
        MAPPINGS,
        (r) => {
          result = r;
        },
        maxBytes,
      );
    });
  }).listen(0, "127.0.0.1");
  t.after(() => {
    upstream.close();
    front.close();
  });
  await new Promise((r) => front.once("listening", r));
  const res = await fetch(`http://127.0.0.1:${(front.address() as AddressInfo).port}/`);
  const text = await res.text();
  return { text, result: result! };
}

test("a JSON body under the cap is rewritten; over the cap it streams through untouched", async (t) => {
  const page = (padding: number) =>
    JSON.stringify({
      value: ["x".repeat(padding)],
      "@odata.nextLink": "https://api.powerapps.com/next?page=2",
    });
  const small = await relay(t, page(100), "application/json; odata.metadata=minimal", 10_000);
  assert.equal(small.result, "rewritten");
  assert.equal(JSON.parse(small.text)["@odata.nextLink"], "https://proxy.example/apps/next?page=2");
  const big = page(50_000);
  const large = await relay(t, big, "application/json", 10_000);
  assert.equal(large.result, "too_large");
  assert.equal(large.text, big, "byte for byte, link not rewritten");
  const notJson = await relay(t, "plain text", "text/plain", 10_000);
  assert.equal(notJson.result, "not_json");
  assert.equal(notJson.text, "plain text");
});
