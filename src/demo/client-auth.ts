/**
 * Client authentication at the token endpoint: client secret, certificate-signed client assertion
 * (matched by its `x5t`/`x5t#S256` header), or a federated (workload identity) assertion verified
 * against the issuer's JWKS — with the AADSTS errors Entra gives for each way it can go wrong.
 */
import { createHash, createPublicKey, timingSafeEqual } from "node:crypto";
import {
  base64url,
  type CompactVerifyGetKey,
  compactVerify,
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  type JWTPayload,
  type ProtectedHeaderParameters,
} from "jose";
import { AadstsError, aadsts } from "./aadsts-errors.ts";
import type { AppRegistration } from "./directory.ts";

export const JWT_BEARER_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/** How the client proved who it is; `appidacr` of the issued token follows from it. */
export type ClientAuthMethod = "none" | "secret" | "certificate" | "federated";

export interface ClientAuthRequest {
  app: AppRegistration;
  form: URLSearchParams;
  /** Injected clock (ms) — decides whether a client secret has expired. */
  now: number;
  /** Values accepted as `aud` of a certificate assertion (the token endpoint URL, the issuer). */
  assertionAudiences: string[];
}

/** Entra tolerates five minutes of clock skew on client assertions. */
const CLOCK_SKEW_SEC = 300;

/** Throws an AadstsError when credentials are present but wrong; returns "none" when there are none. */
export async function authenticateClient(req: ClientAuthRequest): Promise<ClientAuthMethod> {
  const secret = req.form.get("client_secret");
  const assertion = req.form.get("client_assertion");
  if (secret !== null) {
    checkSecret(req.app, secret, req.now);
    return "secret";
  }
  if (assertion !== null) {
    if (req.form.get("client_assertion_type") !== JWT_BEARER_ASSERTION_TYPE)
      throw aadsts.invalidAssertionType();
    const header = decodeOr50027(() => decodeProtectedHeader(assertion));
    if (header.x5t !== undefined || header["x5t#S256"] !== undefined) {
      await checkCertificateAssertion(req, assertion, header);
      return "certificate";
    }
    await checkFederatedAssertion(req.app, assertion);
    return "federated";
  }
  return "none";
}

function checkSecret(app: AppRegistration, presented: string, now: number): void {
  const presentedHash = sha256(presented);
  const match = app.secrets.find((s) => timingSafeEqual(sha256(s.value), presentedHash));
  if (!match) throw aadsts.invalidClientSecret(app.clientId);
  if (match.expiresAt !== undefined && match.expiresAt <= now) throw aadsts.expiredClientSecret(app.clientId);
}

async function checkCertificateAssertion(
  req: ClientAuthRequest,
  assertion: string,
  header: ProtectedHeaderParameters,
): Promise<void> {
  const { app } = req;
  const sha256Thumbprint = thumbprintHex(header["x5t#S256"]);
  const sha1Thumbprint = thumbprintHex(header.x5t);
  const cert = app.certificates.find(
    (c) => c.thumbprintSha256 === sha256Thumbprint || c.thumbprintSha1 === sha1Thumbprint,
  );
  if (!cert) throw aadsts.assertionKeyNotRegistered(app.clientId, sha256Thumbprint ?? sha1Thumbprint ?? "");
  const claims = await verifySignature(assertion, () => createPublicKey(cert.pem));
  if (claims.iss !== app.clientId || claims.sub !== app.clientId) throw aadsts.assertionClientMismatch();
  if (!audiences(claims).some((aud) => req.assertionAudiences.includes(aud))) {
    throw aadsts.assertionAudienceInvalid();
  }
  checkLifetime(claims);
}

async function checkFederatedAssertion(app: AppRegistration, assertion: string): Promise<void> {
  const claims = decodeOr50027(() => decodeJwt(assertion));
  const byIssuer = app.federatedIssuers.filter((f) => f.issuer === claims.iss);
  if (byIssuer.length === 0) throw aadsts.federatedIssuerNotFound(String(claims.iss));
  const bySubject = byIssuer.filter((f) => f.subject === claims.sub);
  if (bySubject.length === 0) throw aadsts.federatedSubjectNotFound(String(claims.sub));
  const credential = bySubject.find((f) => audiences(claims).includes(f.audience));
  if (!credential) throw aadsts.federatedAudienceNotFound(audiences(claims).join(","));
  await verifySignature(assertion, createLocalJWKSet(credential.jwks));
  checkLifetime(claims);
}

async function verifySignature(assertion: string, getKey: CompactVerifyGetKey): Promise<JWTPayload> {
  try {
    const { payload } = await compactVerify(assertion, getKey, {
      algorithms: ["RS256", "PS256", "ES256"],
    });
    return JSON.parse(new TextDecoder().decode(payload)) as JWTPayload;
  } catch {
    throw aadsts.assertionSignatureInvalid();
  }
}

/**
 * msal-node mints certificate assertions with the wall clock (and workload identity tokens come from
 * outside), so their lifetime is checked against the wall clock — not the emulator's injected clock,
 * which tests move to age the tokens the emulator issues.
 */
function checkLifetime(claims: JWTPayload): void {
  const nowSec = Date.now() / 1000;
  if (typeof claims.exp !== "number" || claims.exp + CLOCK_SKEW_SEC < nowSec) throw aadsts.assertionExpired();
  if (typeof claims.nbf === "number" && claims.nbf - CLOCK_SKEW_SEC > nowSec) throw aadsts.assertionExpired();
}

function audiences(claims: JWTPayload): string[] {
  if (Array.isArray(claims.aud)) return claims.aud;
  return typeof claims.aud === "string" ? [claims.aud] : [];
}

function thumbprintHex(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  try {
    return Buffer.from(base64url.decode(value)).toString("hex").toUpperCase();
  } catch {
    return undefined;
  }
}

function decodeOr50027<T>(decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    if (e instanceof AadstsError) throw e;
    throw aadsts.assertionMalformed();
  }
}

function sha256(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}
