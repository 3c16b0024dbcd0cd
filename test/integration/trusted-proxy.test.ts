// X-Forwarded-For is believed only from peers in listen.trustProxy. From a trusted peer the caller is the
// right-most hop that is not itself trusted; that address is what `cidrs` access and the log line see.
import assert from "node:assert/strict";
import { test } from "node:test";
import { sendRaw } from "../helpers/raw-http.ts";
import { PLATFORM_APP_YAML, startStack } from "../helpers/stack.ts";

const YAML = `listen: { host: 127.0.0.1, trustProxy: [127.0.0.1, 10.9.0.0/16] }
warmup: true
${PLATFORM_APP_YAML}  - prefix: /cidr
    service: powerplatform
    upstream: \${POWERPLATFORM_UPSTREAM}
    identity: platform-app
    access: { cidrs: [10.1.0.0/16] }
`;

const get = (forwardedFor: string | undefined) =>
  `GET /cidr/x HTTP/1.1\r\nHost: proxy\r\n${forwardedFor === undefined ? "" : `X-Forwarded-For: ${forwardedFor}\r\n`}Connection: close\r\n\r\n`;

const CASES: Array<{ name: string; forwardedFor: string | undefined; status: number; clientIp: string }> = [
  {
    name: "no X-Forwarded-For: the peer itself",
    forwardedFor: undefined,
    status: 403,
    clientIp: "127.0.0.1",
  },
  { name: "one hop", forwardedFor: "10.1.2.3", status: 200, clientIp: "10.1.2.3" },
  {
    name: "trusted hops on the right are skipped",
    forwardedFor: "10.1.2.3, 10.9.0.4, 127.0.0.1",
    status: 200,
    clientIp: "10.1.2.3",
  },
  {
    name: "an allowed address written left of an untrusted hop is not believed",
    forwardedFor: "10.1.2.3, 192.0.2.9",
    status: 403,
    clientIp: "192.0.2.9",
  },
  {
    name: "garbage in the chain: only the socket is believed",
    forwardedFor: "10.1.2.3, not-an-address",
    status: 403,
    clientIp: "127.0.0.1",
  },
  { name: "IPv4-mapped IPv6 hop", forwardedFor: "::ffff:10.1.2.3", status: 200, clientIp: "10.1.2.3" },
  {
    name: "every hop trusted: the left-most",
    forwardedFor: "10.9.0.7, 10.9.0.4",
    status: 403,
    clientIp: "10.9.0.7",
  },
];

test("a trusted peer's X-Forwarded-For decides the client address for cidrs access and the log", async (t) => {
  const stack = await startStack(t, { yaml: YAML });
  const requestLines = () => stack.logs.filter((l) => l.includes('"msg":"request"'));
  for (const [i, c] of CASES.entries()) {
    const res = await sendRaw(stack.proxy.proxyUrl, get(c.forwardedFor));
    assert.equal(res.status, c.status, `${c.name}: ${res.body}`);
    // Each line is written when its response closes, which the caller may see a moment before.
    while (requestLines().length <= i) await new Promise((r) => setTimeout(r, 5));
    const line = JSON.parse(requestLines()[i]!) as { clientIp?: string };
    assert.equal(line.clientIp, c.clientIp, c.name);
  }
});
