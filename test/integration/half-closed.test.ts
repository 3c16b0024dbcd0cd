// A connection the proxy closes after refusing a malformed request is destroyed, not left half-closed:
// a peer that neither reads nor closes must not keep the proxy's file descriptor (issue 29 §5).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { connect } from "node:net";
import { test } from "node:test";
import { startStack } from "../helpers/stack.ts";

/** Whether some process holds the TCP socket from `localPort` to `remotePort` on 127.0.0.1 (Linux). */
async function socketHeld(localPort: number, remotePort: number): Promise<boolean> {
  const address = (port: number) => `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const rows = (await readFile("/proc/net/tcp", "utf8")).split("\n").slice(1);
  return rows.some((row) => {
    const [, local, remote, , , , , , , inode] = row.trim().split(/\s+/);
    // An orphaned socket (no descriptor left) shows inode 0 while the kernel finishes closing it.
    return local === address(localPort) && remote === address(remotePort) && inode !== "0";
  });
}

test("a malformed request gets 400 and its connection is destroyed even if the peer never reads or closes", async (t) => {
  const stack = await startStack(t);
  const proxyPort = Number(new URL(stack.proxy.proxyUrl).port);
  const peer = connect({ port: proxyPort, host: "127.0.0.1", allowHalfOpen: true });
  t.after(() => peer.destroy());
  await new Promise((resolve) => peer.once("connect", resolve));
  peer.write("GET /powerplatform/x HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n");
  peer.pause(); // never reads, never closes
  const peerPort = peer.localPort!;
  const deadline = Date.now() + 5_000;
  const until = async (wanted: boolean) => {
    while ((await socketHeld(proxyPort, peerPort)) !== wanted && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    return socketHeld(proxyPort, peerPort);
  };
  assert.equal(await until(true), true, "the proxy accepted the connection");
  const held = await until(false);
  assert.equal(held, false, "the proxy still holds the half-closed connection's descriptor");
  peer.resume();
  let answer = "";
  for await (const part of peer) answer += part;
  assert.match(answer, /^HTTP\/1\.1 400 /);
});
