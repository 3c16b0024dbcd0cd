// Every identity kind acquires, through real msal-node, a token the mock upstream accepts; the
// common Entra failures produce the right AADSTS code and hint.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { DEMO_TENANT, type DemoWorld } from "../../src/demo/stack.ts";
import { startStack } from "../helpers/stack.ts";
import { singleIdentityYaml } from "../helpers/yaml.ts";

const run = promisify(execFile);

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "eap-id-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function claimsOf(res: Response): Promise<Record<string, unknown>> {
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { token: Record<string, unknown> }).token;
}

test("certificate (PEM cert + passphrase-protected key): token accepted, x5c sent", async (t) => {
  const dir = await tempDir(t);
  const clientId = randomUUID();
  const stack = await startStack(t, {
    yaml: singleIdentityYaml(`tenantId: \${TENANT_ID}
clientId: \${CERT_CLIENT_ID}
certificate: { certFile: \${CERT_FILE}, keyFile: \${KEY_FILE}, passphrase: \${KEY_PASSPHRASE} }`),
    async prepare(world) {
      const cert = await world.pki.issue({
        commonName: "erp-proxy-cert",
        client: true,
        passphrase: "s3cret-pass",
      });
      await writeFile(join(dir, "cert.pem"), cert.cert);
      await writeFile(join(dir, "key.pem"), cert.key);
      world.emulator.addApp({
        tenantId: DEMO_TENANT,
        clientId,
        certificates: [cert.cert],
        roles: ["Env.Read"],
      });
      return {
        CERT_CLIENT_ID: clientId,
        CERT_FILE: join(dir, "cert.pem"),
        KEY_FILE: join(dir, "key.pem"),
        KEY_PASSPHRASE: "s3cret-pass",
      };
    },
  });
  const claims = await claimsOf(await stack.call("/powerplatform/x", { key: false }));
  assert.equal(claims.appid, clientId);
  assert.equal(claims.aud, "https://api.powerplatform.com");
});

test("certificate from a PFX file (openssl pkcs12 -export): token accepted", async (t) => {
  const dir = await tempDir(t);
  const clientId = randomUUID();
  const stack = await startStack(t, {
    yaml: singleIdentityYaml(`tenantId: \${TENANT_ID}
clientId: \${PFX_CLIENT_ID}
certificate: { pfxFile: \${PFX_FILE}, passphrase: pfx-pass }`),
    async prepare(world) {
      const cert = await world.pki.issue({ commonName: "erp-proxy-pfx", client: true });
      await writeFile(join(dir, "cert.pem"), cert.cert);
      await writeFile(join(dir, "key.pem"), cert.key);
      // openssl is part of the machine image (and of every Debian/Ubuntu CI runner).
      await run("openssl", [
        "pkcs12",
        "-export",
        "-in",
        join(dir, "cert.pem"),
        "-inkey",
        join(dir, "key.pem"),
        "-out",
        join(dir, "app.pfx"),
        "-passout",
        "pass:pfx-pass",
      ]);
      world.emulator.addApp({ tenantId: DEMO_TENANT, clientId, certificates: [cert.cert] });
      return { PFX_CLIENT_ID: clientId, PFX_FILE: join(dir, "app.pfx") };
    },
  });
  const claims = await claimsOf(await stack.call("/powerplatform/x", { key: false }));
  assert.equal(claims.appid, clientId);
});

test("clientSecretFile: a rotated secret file is picked up by the next acquisition", async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, "client-secret");
  const stack = await startStack(t, {
    yaml: singleIdentityYaml(`tenantId: \${TENANT_ID}
clientId: \${CLIENT_ID}
clientSecretFile: \${SECRET_FILE}`),
    backoff: { initialMs: 100, maxMs: 200 },
    async prepare() {
      await writeFile(file, "stale-secret-value\n");
      return { SECRET_FILE: file };
    },
  });
  const before = await stack.call("/powerplatform/x");
  assert.equal(before.status, 503);
  assert.equal(((await before.json()) as { aadsts: string }).aadsts, "AADSTS7000215");
  await writeFile(file, `${stack.world.secrets.clientSecret}\n`); // the kubelet updates the mounted Secret
  await new Promise((r) => setTimeout(r, 250)); // past the back-off
  const after = await stack.call("/powerplatform/x");
  assert.equal(after.status, 200);
  await after.arrayBuffer();
  assert.ok(!stack.logs.join("\n").includes(stack.world.secrets.clientSecret));
});

test("workloadIdentity: the federated token file is the client assertion", async (t) => {
  const dir = await tempDir(t);
  const clientId = randomUUID();
  const issuer = "https://oidc.prod-aks.azure.example/tenant/cluster/";
  const subject = "system:serviceaccount:integration:entra-auth-proxy";
  const stack = await startStack(t, {
    yaml: singleIdentityYaml(`tenantId: \${TENANT_ID}
clientId: \${WI_CLIENT_ID}
workloadIdentity: { tokenFile: \${WI_TOKEN_FILE} }`),
    async prepare(world) {
      const { privateKey, publicKey } = await generateKeyPair("RS256");
      const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
      world.emulator.addApp({
        tenantId: DEMO_TENANT,
        clientId,
        federatedIssuers: [{ issuer, subject, jwks: { keys: [jwk] } }],
      });
      const assertion = await new SignJWT({})
        .setProtectedHeader({ alg: "RS256", kid: "k1" })
        .setIssuer(issuer)
        .setSubject(subject)
        .setAudience("api://AzureADTokenExchange")
        .setIssuedAt()
        .setExpirationTime("1h")
        .sign(privateKey);
      await writeFile(join(dir, "azure-identity-token"), assertion);
      return { WI_CLIENT_ID: clientId, WI_TOKEN_FILE: join(dir, "azure-identity-token") };
    },
  });
  const claims = await claimsOf(await stack.call("/powerplatform/x"));
  assert.equal(claims.appid, clientId);
});

test("user (ROPC): token for LCS; later tokens come from the refresh token", async (t) => {
  const stack = await startStack(t, {
    yaml: singleIdentityYaml(
      `tenantId: \${TENANT_ID}
clientId: \${LCS_CLIENT_ID}
user: { username: \${LCS_USERNAME}, password: \${LCS_PASSWORD} }`,
      ["lcs"],
    ),
    // The second revocation hits a token that a 401 renewal just obtained: allow renewing it at once.
    rejectionRenewalIntervalMs: 0,
  });
  const claims = await claimsOf(await stack.call("/lcs/x"));
  assert.equal(claims.aud, "https://lcsapi.lcs.dynamics.com/");
  stack.world.mocks.lcs.revokeSeenTokens();
  const again = await stack.call("/lcs/y");
  assert.equal(again.status, 200);
  await again.arrayBuffer();
  const grants = stack.world.emulator.tokenRequests.map((r) => r.grantType);
  assert.deepEqual(grants, ["password", "refresh_token"]);

  // Sessions revoked: the refresh token is refused, and the password is used again.
  stack.world.emulator.revokeRefreshTokens();
  stack.world.mocks.lcs.revokeSeenTokens();
  const third = await stack.call("/lcs/z");
  assert.equal(third.status, 200);
  await third.arrayBuffer();
  assert.deepEqual(
    stack.world.emulator.tokenRequests.map((r) => [r.grantType, r.outcome]),
    [
      ["password", "success"],
      ["refresh_token", "success"],
      ["refresh_token", "error"],
      ["password", "success"],
    ],
  );
});

const FAILURES: Array<{
  name: string;
  identity: string;
  prepare?: (world: DemoWorld) => undefined;
  aadsts: string;
  hint: RegExp;
  service?: "powerplatform" | "lcs";
}> = [
  {
    name: "unknown client id",
    identity: `tenantId: \${TENANT_ID}\nclientId: 00000000-dead-beef-0000-000000000000\nclientSecret: \${CLIENT_SECRET}`,
    aadsts: "AADSTS700016",
    hint: /clientId and tenantId/,
    service: "powerplatform",
  },
  {
    name: "wrong password",
    identity: `tenantId: \${TENANT_ID}\nclientId: \${LCS_CLIENT_ID}\nuser: { username: \${LCS_USERNAME}, password: not-the-password }`,
    aadsts: "AADSTS50126",
    hint: /password/,
  },
  {
    name: "MFA required",
    identity: `tenantId: \${TENANT_ID}\nclientId: \${LCS_CLIENT_ID}\nuser: { username: mfa-user@contoso.example, password: Mfa-pa55 }`,
    prepare: (world) => {
      world.emulator.addUser({
        tenantId: DEMO_TENANT,
        username: "mfa-user@contoso.example",
        password: "Mfa-pa55",
        mfaRequired: true,
      });
      return undefined;
    },
    aadsts: "AADSTS50076",
    hint: /MFA/,
  },
  {
    name: "no consent",
    identity: `tenantId: \${TENANT_ID}\nclientId: \${LCS_CLIENT_ID}\nuser: { username: new-user@contoso.example, password: Pa55-new }`,
    prepare: (world) => {
      world.emulator.addUser({
        tenantId: DEMO_TENANT,
        username: "new-user@contoso.example",
        password: "Pa55-new",
        consentedClientIds: [],
      });
      return undefined;
    },
    aadsts: "AADSTS65001",
    hint: /consent/,
  },
];

for (const failure of FAILURES) {
  test(`${failure.name}: 503 token_unavailable with ${failure.aadsts} and a hint`, async (t) => {
    const stack = await startStack(t, {
      yaml: singleIdentityYaml(failure.identity, [failure.service ?? "lcs"]),
      ...(failure.prepare ? { prepare: failure.prepare } : {}),
    });
    const res = await stack.call(`/${failure.service ?? "lcs"}/x`);
    assert.equal(res.status, 503);
    assert.ok(res.headers.get("retry-after"));
    const body = (await res.json()) as { code: string; aadsts: string; hint: string; detail: string };
    assert.equal(body.code, "token_unavailable");
    assert.equal(body.aadsts, failure.aadsts);
    assert.match(body.hint, failure.hint);
    const everything = stack.logs.join("\n") + JSON.stringify(body);
    assert.ok(
      !everything.includes("not-the-password") && !everything.includes("Mfa-pa55"),
      "no password anywhere",
    );
  });
}
