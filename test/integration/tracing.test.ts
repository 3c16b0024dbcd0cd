// OpenTelemetry traces against a local OTLP/HTTP receiver: a server span continuing the caller's
// traceparent, a client span per upstream attempt whose context the upstream receives, a span per token
// acquisition — in JSON and in protobuf — and never a key or query string in what is exported.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { type TestContext, test } from "node:test";
import { startStack } from "../helpers/stack.ts";

interface Export {
  contentType: string;
  body: Buffer;
}

async function startReceiver(t: TestContext): Promise<{ url: string; exports: Export[] }> {
  const exports: Export[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.url === "/v1/traces") {
        exports.push({ contentType: req.headers["content-type"] ?? "", body: Buffer.concat(chunks) });
      }
      const json = (req.headers["content-type"] ?? "").includes("json");
      res.writeHead(200, { "content-type": json ? "application/json" : "application/x-protobuf" });
      res.end(json ? "{}" : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, exports };
}

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN = "00f067aa0ba902b7";
const SECRET = "Zx9-SIG-VALUE-7Qp";

interface OtlpSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
}

async function tracedRequest(t: TestContext, protocol: string) {
  const receiver = await startReceiver(t);
  const stack = await startStack(t, {
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: protocol },
  });
  const res = await stack.call(`/powerplatform/environments?sig=${SECRET}`, {
    headers: { traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` },
  });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  const seen = stack.world.mocks.powerplatform.requests.at(-1)!;
  await stack.proxy.close(100); // flushes the batch of spans
  return { receiver, stack, upstreamTraceparent: String(seen.headers.traceparent ?? "") };
}

test("OTLP/HTTP JSON: server span continues the caller's trace, the upstream gets the client span's context, tokens have spans", async (t) => {
  const { receiver, stack, upstreamTraceparent } = await tracedRequest(t, "http/json");
  assert.ok(receiver.exports.length > 0, "spans were exported");
  const spans: OtlpSpan[] = receiver.exports.flatMap((e) => {
    assert.match(e.contentType, /application\/json/);
    const body = JSON.parse(e.body.toString()) as {
      resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
    };
    return body.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
  });
  const server = spans.find((s) => s.kind === 2 && s.name === "GET /powerplatform");
  assert.ok(server, `a server span named for the route (got ${spans.map((s) => s.name).join(", ")})`);
  assert.equal(server.traceId, TRACE_ID);
  assert.equal(server.parentSpanId, CALLER_SPAN);
  const client = spans.find((s) => s.kind === 3 && s.parentSpanId === server.spanId);
  assert.ok(client, "a client span under the server span");
  assert.equal(upstreamTraceparent, `00-${TRACE_ID}-${client.spanId}-01`);
  assert.ok(
    spans.some((s) => s.name === "token acquisition"),
    "the token acquisition has a span",
  );
  const everything = receiver.exports.map((e) => e.body.toString()).join("\n");
  assert.ok(!everything.includes(SECRET), "no query string value is exported");
  assert.ok(!everything.includes(stack.world.secrets.apiKey), "no API key is exported");
  assert.doesNotMatch(everything, /eyJ[\w-]{10,}\.[\w-]{10,}\./, "no token is exported");
});

test("OTLP/HTTP protobuf is the default protocol", async (t) => {
  const { receiver, upstreamTraceparent } = await tracedRequest(t, "");
  assert.ok(receiver.exports.length > 0, "spans were exported");
  for (const e of receiver.exports) assert.equal(e.contentType, "application/x-protobuf");
  const payload = Buffer.concat(receiver.exports.map((e) => e.body));
  // Span names and the trace id travel as protobuf strings and bytes.
  assert.ok(payload.includes("GET /powerplatform"), "the server span is in the payload");
  assert.ok(payload.includes(Buffer.from(TRACE_ID, "hex")), "the caller's trace id is in the payload");
  assert.match(upstreamTraceparent, new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
  assert.ok(!payload.includes(SECRET));
});

test("without an OTLP endpoint nothing is traced and no traceparent is invented", async (t) => {
  const stack = await startStack(t);
  const res = await stack.call("/powerplatform/x");
  await res.arrayBuffer();
  assert.equal(stack.world.mocks.powerplatform.requests.at(-1)!.headers.traceparent, undefined);
});
