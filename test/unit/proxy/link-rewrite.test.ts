import assert from "node:assert/strict";
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import {
  brotliCompressSync,
  brotliDecompressSync,
  deflateSync,
  gunzipSync,
  gzipSync,
  inflateSync,
} from "node:zlib";
import { type LinkRewriteResult, sendWithLinkRewrite } from "../../../src/proxy/link-rewrite.ts";
import type { UrlMapping } from "../../../src/proxy/rewrite.ts";

const MAPPINGS: UrlMapping[] = [[new URL("https://api.powerapps.com"), "https://proxy.example/apps"]];

interface Relayed {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  result: LinkRewriteResult;
}

/**
 * Serves what `answer` writes from an upstream, relays it through sendWithLinkRewrite (with the caller's
 * method and `maxBytes`), and reads the raw bytes the caller gets — no decompression on the way.
 */
async function relay(
  t: { after(fn: () => void): void },
  answer: (res: ServerResponse) => void,
  {
    method = "GET",
    maxBytes,
    meanwhile,
  }: {
    method?: string;
    maxBytes?: number;
    /** Runs right after sendWithLinkRewrite took the upstream answer (e.g. answers the caller itself). */
    meanwhile?: (up: IncomingMessage, res: ServerResponse) => void;
  } = {},
): Promise<Relayed> {
  const upstream = createServer((_req, res) => answer(res)).listen(0, "127.0.0.1");
  let result: LinkRewriteResult | undefined;
  const front = createServer((req, res) => {
    const upstreamPort = (upstream.address() as AddressInfo).port;
    request({ host: "127.0.0.1", port: upstreamPort, method: req.method }, (up: IncomingMessage) => {
      sendWithLinkRewrite(
        up,
        res,
        up.statusCode!,
        { ...up.headers },
        MAPPINGS,
        (r) => {
          result = r;
        },
        { method: req.method, ...(maxBytes === undefined ? {} : { maxBytes }) },
      );
      meanwhile?.(up, res);
    }).end();
  }).listen(0, "127.0.0.1");
  t.after(() => {
    upstream.close();
    front.close();
  });
  await new Promise((r) => front.once("listening", r));
  const port = (front.address() as AddressInfo).port;
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, method }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          body: Buffer.concat(chunks),
          result: result!,
        }),
      );
    })
      .on("error", reject)
      .end();
  });
}

/** An upstream answer: `body` sent chunked (no Content-Length), 1000 bytes at a time. */
function chunked(body: Buffer | string, headers: Record<string, string>) {
  return (res: ServerResponse) => {
    res.writeHead(200, headers);
    const bytes = Buffer.from(body);
    for (let i = 0; i < bytes.length; i += 1000) res.write(bytes.subarray(i, i + 1000));
    res.end();
  };
}

test("a JSON body under the cap is rewritten; over the cap it streams through untouched", async (t) => {
  const page = (padding: number) =>
    JSON.stringify({
      value: ["x".repeat(padding)],
      "@odata.nextLink": "https://api.powerapps.com/next?page=2",
    });
  const json = { "content-type": "application/json; odata.metadata=minimal" };
  const small = await relay(t, chunked(page(100), json), { maxBytes: 10_000 });
  assert.equal(small.result, "rewritten");
  assert.equal(
    JSON.parse(small.body.toString())["@odata.nextLink"],
    "https://proxy.example/apps/next?page=2",
  );
  const big = page(50_000);
  const large = await relay(t, chunked(big, json), { maxBytes: 10_000 });
  assert.equal(large.result, "too_large");
  assert.equal(large.body.toString(), big, "byte for byte, link not rewritten");
  const notJson = await relay(t, chunked("plain text", { "content-type": "text/plain" }), {
    maxBytes: 10_000,
  });
  assert.equal(notJson.result, "not_json");
  assert.equal(notJson.body.toString(), "plain text");
});

test("only the link values change: numbers, 1e400, escapes, whitespace and ISO-8859-1 bytes arrive byte for byte", async (t) => {
  const head = Buffer.from(
    '{ "value" : [ {"versionnumber":12345678901234567890,"creditlimit":922337203685477.5807,' +
      '"huge":1e400, "tiny":-0.000000000000000000001E-5, "name":"',
    "latin1",
  );
  const latin1 = Buffer.from("Müller café ÿ", "latin1"); // bytes 0xFC, 0xE9, 0xFF: not UTF-8
  const middle = Buffer.from(
    '", "escaped":"\\u00e9\\/x\\"y\\\\", "url":"https://api.powerapps.com/not-a-link"} ],\n\t"@odata.nextLink" :  ',
    "latin1",
  );
  const link = '"https:\\/\\/api.powerapps.com\\/next?$skiptoken=%27a%27"';
  const tail = Buffer.from(' ,\r\n "@odata.count": 1.50 }\n');
  const body = Buffer.concat([head, latin1, middle, Buffer.from(link), tail]);
  const expected = Buffer.concat([
    head,
    latin1,
    middle,
    Buffer.from('"https://proxy.example/apps/next?$skiptoken=%27a%27"'),
    tail,
  ]);
  const got = await relay(t, chunked(body, { "content-type": "application/json; charset=iso-8859-1" }));
  assert.equal(got.result, "rewritten");
  assert.equal(got.body.toString("latin1"), expected.toString("latin1"));
  assert.ok(got.body.equals(expected), "byte for byte");
  assert.equal(got.headers["content-length"], String(expected.length));
});

test("<property>@odata.nextLink annotations ($expand) are rewritten, in any case, at any depth", async (t) => {
  const doc = {
    value: [
      {
        name: "a",
        "contact_customer_accounts@odata.nextLink": "https://api.powerapps.com/contacts?$skiptoken=2",
        nested: {
          "x@ODATA.NEXTLINK": "https://api.powerapps.com/deep",
          nextLink: "https://api.powerapps.com/y",
        },
      },
    ],
    "@odata.deltaLink": "https://api.powerapps.com/delta",
    "@odata.nextlink": "https://api.powerapps.com/lower",
    other: {
      "@odata.deltaLink": "https://elsewhere.example/z",
      "@odata.context": "https://api.powerapps.com/$m",
    },
    "nextLink@odata.type": "https://api.powerapps.com/not-a-link",
  };
  const got = await relay(t, chunked(JSON.stringify(doc), { "content-type": "application/json" }));
  assert.equal(got.result, "rewritten");
  const out = JSON.parse(got.body.toString()) as typeof doc;
  const entry = out.value[0]!;
  assert.equal(
    entry["contact_customer_accounts@odata.nextLink"],
    "https://proxy.example/apps/contacts?$skiptoken=2",
  );
  assert.equal(entry.nested["x@ODATA.NEXTLINK"], "https://proxy.example/apps/deep");
  assert.equal(entry.nested.nextLink, "https://proxy.example/apps/y");
  assert.equal(out["@odata.deltaLink"], "https://proxy.example/apps/delta");
  assert.equal(out["@odata.nextlink"], "https://proxy.example/apps/lower");
  assert.equal(out.other["@odata.deltaLink"], "https://elsewhere.example/z", "another host: unchanged");
  assert.equal(out.other["@odata.context"], "https://api.powerapps.com/$m", "not a link key");
  assert.equal(out["nextLink@odata.type"], "https://api.powerapps.com/not-a-link", "not a link key");
});

const CODINGS = [
  { coding: "gzip", encode: gzipSync, decode: gunzipSync },
  { coding: "deflate", encode: deflateSync, decode: inflateSync },
  { coding: "br", encode: brotliCompressSync, decode: brotliDecompressSync },
] as const;

test("compressed responses (gzip, deflate, br) are rewritten and sent in the same coding with their length", async (t) => {
  const page = Buffer.from(
    `{"value":[${'{"n":12345678901234567890},'.repeat(200)}{}],"@odata.nextLink":"https://api.powerapps.com/next?p=2"}`,
  );
  const expected = page.toString().replace("https://api.powerapps.com/", "https://proxy.example/apps/");
  for (const { coding, encode, decode } of CODINGS) {
    const packed = encode(page);
    const got = await relay(t, (res) => {
      res.writeHead(200, {
        "content-type": "application/json",
        "content-encoding": coding,
        "content-length": packed.length,
      });
      res.end(packed);
    });
    assert.equal(got.result, "rewritten", coding);
    assert.equal(got.headers["content-encoding"], coding);
    assert.equal(
      got.headers["content-length"],
      String(got.body.length),
      `${coding}: length of what was sent`,
    );
    assert.equal(
      decode(got.body).toString(),
      expected,
      `${coding}: links through the proxy, the rest as sent`,
    );
  }
});

test("a compressed response without links, or not JSON inside, goes out as the upstream's own bytes", async (t) => {
  for (const [text, result] of [
    ['{"value":[1.0]}', "unchanged"],
    ["{not json", "invalid_json"],
  ] as const) {
    const packed = gzipSync(text);
    const got = await relay(
      t,
      chunked(packed, { "content-type": "application/json", "content-encoding": "gzip" }),
    );
    assert.equal(got.result, result);
    assert.ok(got.body.equals(packed));
  }
});

test("a compressed body that decodes to more than the cap is sent as it came", async (t) => {
  const page = `{"value":["${"x".repeat(50_000)}"],"@odata.nextLink":"https://api.powerapps.com/n"}`;
  const packed = gzipSync(page);
  assert.ok(packed.length < 10_000);
  const got = await relay(
    t,
    chunked(packed, { "content-type": "application/json", "content-encoding": "gzip" }),
    {
      maxBytes: 10_000,
    },
  );
  assert.equal(got.result, "too_large");
  assert.ok(got.body.equals(packed));
});

test("a caller answered otherwise while the body is held (its upload refused) gets nothing more, and nothing throws", async (t) => {
  const page = Buffer.from(`{"value":[1],"@odata.nextLink":"https://api.powerapps.com/next?p=2"}`);
  const refuse = (res: ServerResponse) => res.writeHead(413, { "content-type": "text/plain" }).end("refused");
  // Compressed: the answer comes while the held body is being decoded, off the event loop.
  const packed = gzipSync(page);
  const whileDecoding = await relay(
    t,
    chunked(packed, { "content-type": "application/json", "content-encoding": "gzip" }),
    { meanwhile: (up, res) => up.once("end", () => refuse(res)) },
  );
  assert.equal(whileDecoding.status, 413);
  assert.equal(whileDecoding.body.toString(), "refused");
  assert.equal(whileDecoding.result, undefined, "no rewrite reported for a response never sent");
  // Plain, growing past the cap while the caller has already been answered.
  const overCap = await relay(
    t,
    chunked(Buffer.from(`["${"x".repeat(5000)}"]`), { "content-type": "application/json" }),
    {
      maxBytes: 1000,
      meanwhile: (_up, res) => refuse(res),
    },
  );
  assert.equal(overCap.status, 413);
  assert.equal(overCap.body.toString(), "refused");
});

test("a coding that is not known is passed through untouched", async (t) => {
  const body = Buffer.from("opaque bytes");
  const got = await relay(
    t,
    chunked(body, { "content-type": "application/json", "content-encoding": "gzip, br" }),
  );
  assert.equal(got.result, "encoded");
  assert.ok(got.body.equals(body));
});

test("a response to HEAD keeps the upstream's Content-Length, not a made-up 0", async (t) => {
  const head = await relay(
    t,
    (res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": "1234" });
      res.end();
    },
    { method: "HEAD" },
  );
  assert.equal(head.status, 200);
  assert.equal(head.headers["content-length"], "1234", "HEAD: the length of the body a GET would get");
});

test("204 and 304 keep the upstream's framing: no made-up Content-Length: 0", async (t) => {
  for (const status of [204, 304]) {
    const got = await relay(t, (res) => {
      res.writeHead(status, { "content-type": "application/json", etag: '"v1"' });
      res.end();
    });
    assert.equal(got.status, status);
    assert.equal(got.headers["content-length"], undefined, `${status}: no Content-Length`);
    assert.equal(got.headers["transfer-encoding"], undefined, `${status}: no Transfer-Encoding`);
    assert.equal(got.headers.etag, '"v1"');
  }
});
