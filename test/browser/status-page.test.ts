// The status page in a real browser (Debian's chromium driven by playwright-core): content, the
// CSP-safe countdown script actually running, a screenshot, and no token or secret on the page.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { test } from "node:test";
import { chromium } from "playwright-core";
import { DEMO_ROUTES_YAML } from "../../src/demo/stack.ts";
import { startStack } from "../helpers/stack.ts";

/** A route whose upstream is a long URL, as flow trigger URLs are: it must wrap, not widen the page. */
const LONG_PATH = `/powerautomate/automations/direct/workflows/${"0123456789abcdef".repeat(4)}/triggers/manual/paths/invoke/${"segment".repeat(12)}`;
const YAML = `${DEMO_ROUTES_YAML}  - prefix: /long-upstream
    service: powerplatform
    upstream: \${POWERPLATFORM_UPSTREAM}${LONG_PATH}
    identity: platform-app
    access: { apiKeys: [{ name: erp-nightly, sha256: "\${DEMO_API_KEY_SHA256}", expires: 2099-12-31 }] }
`;

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SCREENSHOT = new URL("../../test-results/status-page.png", import.meta.url).pathname;

test("status page: routes, token countdown, recent 401s, request and 5xx counts, key expiry; fits 1280 px; screenshot; nothing secret visible", async (t) => {
  // npm test must work with only Node and npm, so a missing browser skips the test and says why.
  // .ci/run sets REQUIRE_BROWSER=1 after installing chromium: there a missing browser is a failure.
  if (!existsSync(CHROMIUM)) {
    assert.notEqual(
      process.env.REQUIRE_BROWSER,
      "1",
      `${CHROMIUM} not found and REQUIRE_BROWSER=1: install chromium or set CHROMIUM_PATH`,
    );
    t.skip(`${CHROMIUM} not found: apt-get install chromium (or set CHROMIUM_PATH) to run the browser test`);
    return;
  }
  const stack = await startStack(t, { yaml: YAML });
  for (const path of [
    "/powerplatform/environments",
    "/powerapps/apps",
    "/powerplatform/always401",
    "/lcs/status/502",
  ]) {
    await (await stack.call(path)).arrayBuffer();
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  t.after(() => browser.close());
  // 1280 px: a common laptop width, where an unwrapped trigger URL pushed the last columns off-screen.
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const cspViolations: string[] = [];
  page.on("console", (msg) => {
    if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
  });
  const response = await page.goto(`${stack.proxy.adminUrl}/status`);
  assert.equal(response?.status(), 200);
  assert.match(response?.headers()["content-security-policy"] ?? "", /script-src 'self'/);

  assert.equal(await page.locator("h1").textContent(), "entra-auth-proxy");
  const body = (await page.locator("body").textContent()) ?? "";
  for (const prefix of ["/powerplatform", "/powerapps", "/flows/order-created", "/lcs"])
    assert.ok(body.includes(prefix), prefix);
  assert.ok(body.includes("platform-app") && body.includes("lcs-user"));
  // The countdown is written by /status.js: it ran, so CSP let the same-origin script through.
  await page.waitForFunction(
    `/^in \\d+m \\d+s$/.test(document.querySelector("[data-expires]")?.textContent ?? "")`,
  );
  const countdown = await page.locator("[data-expires]").first().textContent();
  assert.match(countdown ?? "", /^in \d+m \d+s$/);
  assert.ok(body.includes("upstream 401"), "recent events list the upstream 401");
  const powerplatformRow = page.locator("tr", { hasText: "/powerplatform" }).first();
  assert.match(
    (await powerplatformRow.textContent()) ?? "",
    /2$/,
    "two upstream 401s in the last hour (request + retry)",
  );
  assert.deepEqual(cspViolations, []);

  // Nothing wider than the window: the long upstream wraps, and the last column is on screen.
  assert.ok(body.includes(LONG_PATH.slice(0, 40)), "the long upstream is shown");
  const overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth");
  assert.ok(Number(overflow) <= 0, `page wider than the window by ${overflow} px`);
  for (const header of ["Scope", "Access", "Requests", "5xx", "Upstream 401s (1 h)"]) {
    const box = await page.locator("table.routes th", { hasText: header }).first().boundingBox();
    assert.ok(box && box.x + box.width <= 1280, `${header} column is on screen (${JSON.stringify(box)})`);
  }
  // Per-route request and 5xx counts: /lcs answered one 502.
  const lcsCells = await page
    .locator("table.routes tr", { hasText: "/lcs" })
    .first()
    .locator("td")
    .allTextContents();
  assert.deepEqual(lcsCells.slice(-3), ["1", "1", "0"], "requests, 5xx, upstream 401s on /lcs");
  // Key names and their expiry (never their hashes).
  const keyRow = (await page.locator("tr", { hasText: "erp-nightly" }).first().textContent()) ?? "";
  assert.match(keyRow, /\/long-upstream\s*erp-nightly\s*2100-01-01 00:00 UTC \(in \d+ days\)/);
  assert.ok(!(await page.content()).includes(stack.world.env.DEMO_API_KEY_SHA256!.slice(7)), "no key hash");

  const html = await page.content();
  for (const secret of [
    stack.world.secrets.apiKey,
    stack.world.secrets.clientSecret,
    stack.world.secrets.userPassword,
  ]) {
    assert.ok(!html.includes(secret), "no secret on the page");
  }
  assert.doesNotMatch(html, /eyJ[\w-]{10,}\.[\w-]{10,}\./, "no token on the page");

  await mkdir(new URL("../../test-results/", import.meta.url), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  t.diagnostic(`screenshot: ${SCREENSHOT}`);
});
