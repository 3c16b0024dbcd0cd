// The emulator driven by real @azure/msal-node: every flow the proxy uses, and the errors it must explain.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import {
  ConfidentialClientApplication,
  ManagedIdentityApplication,
  PublicClientApplication,
} from "@azure/msal-node";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { useIdentityEndpoint } from "../../helpers/identity-endpoint.ts";
import { trustedPki } from "../../helpers/pki.ts";
import { decodeClaims, msalAuthority, OTHER_TENANT, PP_SCOPE, startEmulator, TENANT } from "./fixtures.ts";

const CLIENT_ID = "11111111-aaaa-4bbb-8ccc-000000000001";
const SECRET = "s3cr3t~value-not-the-id";

test("client secret: token with v1 app claims for the .default resource", async (t) => {
  const emulator = await startEmulator(t);
  const sp = emulator.addApp({
    tenantId: TENANT,
    clientId: CLIENT_ID,
    clientSecrets: [SECRET],
    roles: ["Env.Read"],
  });
  const app = new ConfidentialClientApplication({
    auth: { clientId: CLIENT_ID, clientSecret: SECRET, ...msalAuthority(emulator) },
  });

  const result = await app.acquireTokenByClientCredential({ scopes: [PP_SCOPE] });
  assert.ok(result?.accessToken);
  const claims = decodeClaims(result.accessToken);
  assert.equal(claims["aud"], "https://api.powerplatform.com");
  assert.equal(claims["iss"], `https://sts.windows.net/${TENANT}/`);
  assert.equal(claims["tid"], TENANT);
  assert.equal(claims["appid"], CLIENT_ID);
  assert.equal(claims["azp"], CLIENT_ID);
  assert.equal(claims["oid"], sp.objectId);
  assert.equal(claims["idtyp"], "app");
  assert.equal(claims["ver"], "1.0");
  assert.deepEqual(claims["roles"], ["Env.Read"]);
  assert.equal((claims["exp"] as number) - (claims["iat"] as number), 3600);
  assert.deepEqual(
    emulator.tokenRequests.map((r) => [r.grantType, r.clientId, r.scope, r.outcome]),
    [["client_credentials", CLIENT_ID, PP_SCOPE, "success"]],
  );
  assert.doesNotMatch(JSON.stringify(emulator.tokenRequests), /s3cr3t/, "the log never holds secrets");
});

test("powerapps' double-slash scope gives aud with the trailing slash", async (t) => {
  const emulator = await startEmulator(t);
  emulator.addApp({ tenantId: TENANT, clientId: CLIENT_ID, clientSecrets: [SECRET] });
  const app = new ConfidentialClientApplication({
    auth: { clientId: CLIENT_ID, clientSecret: SECRET, ...msalAuthority(emulator) },
  });
  const result = await app.acquireTokenByClientCredential({
    scopes: ["https://service.powerapps.com//.default"],
  });
  assert.equal(decodeClaims(result!.accessToken)["aud"], "https://service.powerapps.com/");
});

test("wrong secret → AADSTS7000215 invalid_client", async (t) => {
  const emulator = await startEmulator(t);
  emulator.addApp({ tenantId: TENANT, clientId: CLIENT_ID, clientSecrets: [SECRET] });
  const app = new ConfidentialClientApplication({
    auth: { clientId: CLIENT_ID, clientSecret: "wrong", ...msalAuthority(emulator) },
  });
  await assert.rejects(
    app.acquireTokenByClientCredential({ scopes: [PP_SCOPE] }),
    (e: Error & { errorCode: string }) => {
      assert.equal(e.errorCode, "invalid_client");
      assert.match(e.message, /AADSTS7000215: Invalid client secret provided/);
      return true;
    },
  );
  assert.equal(emulator.tokenRequests[0]?.error, "AADSTS7000215");
});

test("expired secret → AADSTS7000222; unknown client → AADSTS700016; unknown tenant fails discovery", async (t) => {
  const now = Date.parse("2026-03-01T00:00:00Z");
  const emulator = await startEmulator(t, { now: () => now });
  emulator.addApp({
    tenantId: TENANT,
    clientId: CLIENT_ID,
    clientSecrets: [{ value: SECRET, expires: "2026-02-01T00:00:00Z" }],
  });
  const expired = new ConfidentialClientApplication({
    auth: { clientId: CLIENT_ID, clientSecret: SECRET, ...msalAuthority(emulator) },
  });
  await assert.rejects(expired.acquireTokenByClientCredential({ scopes: [PP_SCOPE] }), /AADSTS7000222/);

  const unknown = new ConfidentialClientApplication({
    auth: { clientId: randomUUID(), clientSecret: SECRET, ...msalAuthority(emulator) },
  });
  await assert.rejects(
    unknown.acquireTokenByClientCredential({ scopes: [PP_SCOPE] }),
    (e: Error & { errorCode: string }) => {
      assert.equal(e.errorCode, "unauthorized_client");
      assert.match(e.message, /AADSTS700016/);
      return true;
    },
  );

  // Like Entra, an unknown tenant already fails OpenID discovery (400 AADSTS90002), which msal-node
  // reports as an endpoint resolution error without the AADSTS code.
  const wrongTenant = new ConfidentialClientApplication({
    auth: { clientId: CLIENT_ID, clientSecret: SECRET, ...msalAuthority(emulator, OTHER_TENANT) },
  });
  await assert.rejects(wrongTenant.acquireTokenByClientCredential({ scopes: [PP_SCOPE] }), {
    errorCode: "endpoints_resolution_error",
  });
});

test("client credentials with a scope that is not /.default → AADSTS1002012", async (t) => {
  const emulator = await startEmulator(t);
  emulator.addApp({ tenantId: TENANT, clientId: CLIENT_ID, clientSecrets: [SECRET] });
  const app = new ConfidentialClientApplication({
    auth: { clientId: CLIENT_ID, clientSecret: SECRET, ...msalAuthority(emulator) },
  });
  await assert.rejects(
    app.acquireTokenByClientCredential({ scopes: ["https://api.powerplatform.com/user_impersonation"] }),
    /AADSTS1002012/,
  );
});

test("certificate credential: msal's PS256 assertion with x5t#S256 is accepted, a foreign cert is not", async (t) => {
  const pki = await trustedPki();
  const [cert, foreign] = await Promise.all([
    pki.issue({ commonName: "proxy-app", client: true }),
    pki.issue({ commonName: "someone-else", client: true }),
  ]);
  const emulator = await startEmulator(t);
  emulator.addApp({ tenantId: TENANT, clientId: CLIENT_ID, certificates: [cert.cert] });

  const app = new ConfidentialClientApplication({
    auth: {
      clientId: CLIENT_ID,
      clientCertificate: { thumbprintSha256: cert.thumbprintSha256, privateKey: cert.key, x5c: cert.cert },
      ...msalAuthority(emulator),
    },
  });
  const result = await app.acquireTokenByClientCredential({ scopes: [PP_SCOPE] });
  assert.equal(decodeClaims(result!.accessToken)["appidacr"], "2");

  const impostor = new ConfidentialClientApplication({
    auth: {
      clientId: CLIENT_ID,
      clientCertificate: { thumbprintSha256: foreign.thumbprintSha256, privateKey: foreign.key },
      ...msalAuthority(emulator),
    },
  });
  await assert.rejects(impostor.acquireTokenByClientCredential({ scopes: [PP_SCOPE] }), /AADSTS700027/);

  // A registered thumbprint with a key that did not make the certificate: signature check fails.
  const forger = new ConfidentialClientApplication({
    auth: {
      clientId: CLIENT_ID,
      clientCertificate: { thumbprintSha256: cert.thumbprintSha256, privateKey: foreign.key },
      ...msalAuthority(emulator),
    },
  });
  await assert.rejects(
    forger.acquireTokenByClientCredential({ scopes: [PP_SCOPE] }),
    /AADSTS700027: Client assertion failed signature validation/,
  );
});

test("workload identity: a federated assertion verified against the issuer's JWKS", async (t) => {
  const issuer = "https://oidc.aks.example/6f1c2b3a/";
  const subject = "system:serviceaccount:proxy:entra-auth-proxy";
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "aks-1", alg: "RS256" };
  const emulator = await startEmulator(t);
  emulator.addApp({
    tenantId: TENANT,
    clientId: CLIENT_ID,
    federatedIssuers: [{ issuer, subject, jwks: { keys: [jwk] } }],
  });
  const serviceAccountToken = (sub: string) =>
    new SignJWT({})
      .setProtectedHeader({ alg: "RS256", kid: "aks-1" })
      .setIssuer(issuer)
      .setSubject(sub)
      .setAudience("api://AzureADTokenExchange")
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(privateKey);

  const app = new ConfidentialClientApplication({
    auth: {
      clientId: CLIENT_ID,
      clientAssertion: () => serviceAccountToken(subject),
      ...msalAuthority(emulator),
    },
  });
  const result = await app.acquireTokenByClientCredential({ scopes: [PP_SCOPE] });
  assert.equal(decodeClaims(result!.accessToken)["appid"], CLIENT_ID);

  const otherSa = new ConfidentialClientApplication({
    auth: {
      clientId: CLIENT_ID,
      clientAssertion: () => serviceAccountToken("system:serviceaccount:other:sa"),
      ...msalAuthority(emulator),
    },
  });
  await assert.rejects(otherSa.acquireTokenByClientCredential({ scopes: [PP_SCOPE] }), /AADSTS700213/);
});

test("ROPC: user token with scp and upn, then forceRefresh uses the refresh_token grant", async (t) => {
  const emulator = await startEmulator(t);
  emulator.addApp({ tenantId: TENANT, clientId: CLIENT_ID, publicClient: true });
  const user = emulator.addUser({ tenantId: TENANT, username: "ops@contoso.example", password: "pa55w0rd!" });
  const pca = new PublicClientApplication({ auth: { clientId: CLIENT_ID, ...msalAuthority(emulator) } });
  const scopes = ["https://lcsapi.lcs.dynamics.com//.default"];

  const first = await pca.acquireTokenByUsernamePassword({
    scopes,
    username: user.username,
    password: "pa55w0rd!",
  });
  assert.ok(first?.account);
  assert.equal(first.account.username, "ops@contoso.example");
  assert.equal(first.account.homeAccountId, `${user.objectId}.${TENANT}`);
  const claims = decodeClaims(first.accessToken);
  assert.equal(claims["aud"], "https://lcsapi.lcs.dynamics.com/", "aud is the scope without /.default");
  assert.equal(claims["idtyp"], "user");
  assert.equal(claims["scp"], "user_impersonation");
  assert.equal(claims["upn"], "ops@contoso.example");
  assert.equal(claims["oid"], user.objectId);

  const refreshed = await pca.acquireTokenSilent({ account: first.account, scopes, forceRefresh: true });
  assert.notEqual(refreshed.accessToken, first.accessToken);
  assert.equal(decodeClaims(refreshed.accessToken)["oid"], user.objectId);
  assert.deepEqual(
    emulator.tokenRequests.map((r) => [r.grantType, r.outcome]),
    [
      ["password", "success"],
      ["refresh_token", "success"],
    ],
  );
  assert.doesNotMatch(JSON.stringify(emulator.tokenRequests), /pa55w0rd/);
});

test("ROPC errors: bad password 50126, MFA 50076, no consent 65001, confidential app without secret 7000218", async (t) => {
  const emulator = await startEmulator(t);
  const confidentialId = randomUUID();
  emulator.addApp({ tenantId: TENANT, clientId: CLIENT_ID, publicClient: true, displayName: "LCS client" });
  emulator.addApp({ tenantId: TENANT, clientId: confidentialId, clientSecrets: [SECRET] });
  emulator.addUser({ tenantId: TENANT, username: "plain@contoso.example", password: "pw" });
  emulator.addUser({ tenantId: TENANT, username: "mfa@contoso.example", password: "pw", mfaRequired: true });
  emulator.addUser({
    tenantId: TENANT,
    username: "noconsent@contoso.example",
    password: "pw",
    consentedClientIds: [],
  });
  const pca = new PublicClientApplication({ auth: { clientId: CLIENT_ID, ...msalAuthority(emulator) } });
  const ropc = (username: string, password = "pw", client = pca) =>
    client.acquireTokenByUsernamePassword({ scopes: [PP_SCOPE], username, password });

  await assert.rejects(ropc("plain@contoso.example", "nope"), (e: Error & { errorCode: string }) => {
    assert.equal(e.errorCode, "invalid_grant");
    assert.match(e.message, /AADSTS50126/);
    return true;
  });
  await assert.rejects(ropc("mfa@contoso.example"), /AADSTS50076/);
  await assert.rejects(
    ropc("noconsent@contoso.example"),
    /AADSTS65001: The user or administrator has not consented/,
  );
  const notPublic = new PublicClientApplication({
    auth: { clientId: confidentialId, ...msalAuthority(emulator) },
  });
  await assert.rejects(ropc("plain@contoso.example", "pw", notPublic), /AADSTS7000218/);
  assert.deepEqual(
    emulator.tokenRequests.map((r) => r.error),
    ["AADSTS50126", "AADSTS50076", "AADSTS65001", "AADSTS7000218"],
  );
});

test("fault injection: one 500, then success — msal-node throttles the identical request after a 5xx", async (t) => {
  const emulator = await startEmulator(t);
  emulator.addApp({ tenantId: TENANT, clientId: CLIENT_ID, clientSecrets: [SECRET] });
  emulator.inject({ status: 500, times: 1, match: { clientId: CLIENT_ID } });
  const newApp = () =>
    new ConfidentialClientApplication({
      auth: { clientId: CLIENT_ID, clientSecret: SECRET, ...msalAuthority(emulator) },
    });

  const app = newApp();
  await assert.rejects(app.acquireTokenByClientCredential({ scopes: [PP_SCOPE] }), /AADSTS50000/);
  // Gotcha: after a 429/5xx msal-node answers the same request from its throttling cache (Retry-After,
  // else 60 s) without calling the IdP. A fresh application instance is not throttled.
  await assert.rejects(app.acquireTokenByClientCredential({ scopes: [PP_SCOPE] }), /AADSTS50000/);
  assert.equal(emulator.tokenRequests.length, 1);

  const result = await newApp().acquireTokenByClientCredential({ scopes: [PP_SCOPE] });
  assert.ok(result?.accessToken);
  assert.deepEqual(
    emulator.tokenRequests.map((r) => [r.outcome, r.status]),
    [
      ["fault", 500],
      ["success", 200],
    ],
  );
});

test("managed identity via msal-node's App Service source (IDENTITY_ENDPOINT / IDENTITY_HEADER)", async (t) => {
  const emulator = await startEmulator(t);
  const mi = emulator.addManagedIdentity({
    tenantId: TENANT,
    clientId: randomUUID(),
    objectId: randomUUID(),
  });
  useIdentityEndpoint(t, emulator.msiEndpoint, emulator.identityHeader);

  // msal-node picks the managed identity source once per process (a static) and shares one token cache
  // across ManagedIdentityApplication instances, so this file has exactly one managed identity test.
  const app = new ManagedIdentityApplication({
    managedIdentityIdParams: { userAssignedClientId: mi.clientId },
  });
  const result = await app.acquireToken({ resource: "https://service.powerapps.com//.default" });
  const claims = decodeClaims(result.accessToken);
  assert.equal(claims["aud"], "https://service.powerapps.com/");
  assert.equal(claims["appid"], mi.clientId);
  assert.equal(claims["oid"], mi.objectId);
  assert.ok(result.expiresOn && result.expiresOn.getTime() > Date.now() + 3000 * 1000);
  assert.deepEqual(
    emulator.tokenRequests.map((r) => [r.grantType, r.clientId, r.outcome]),
    [["managed_identity", mi.clientId, "success"]],
  );
});
