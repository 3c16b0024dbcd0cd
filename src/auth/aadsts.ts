// Turns a failed token acquisition into something an operator can act on: the AADSTS code Entra
// returned (or "network"), a hint, and how long to wait. Never includes secrets: msal-node's
// error descriptions carry only Entra's text, trace ids and timestamps.

export const AADSTS_HINTS: Record<string, string> = {
  "7000215": "Invalid client secret: use the secret's Value (not its ID) and check it was not rotated.",
  "7000222":
    "The client secret has expired: create a new secret on the app registration and update the config.",
  "700016":
    "Unknown application in this tenant: check clientId and tenantId, and that the app exists in that tenant.",
  "90002":
    "Tenant not found: check tenantId and the cloud (public, usgov, china …) — tenantId and clientId swapped?",
  "50076":
    "MFA is required for this user: ROPC cannot do MFA — exclude the account from MFA via Conditional Access or use an app identity.",
  "50079": "The user must register for MFA: ROPC cannot do MFA — exclude the account or use an app identity.",
  "50126": "Wrong username or password for the user identity.",
  "50034": "The user account does not exist in this tenant.",
  "50053": "The account is locked (too many failed sign-ins); wait, then check the password.",
  "50055": "The user's password has expired: reset it and update the config.",
  "65001":
    "Consent missing: grant admin consent for this API on the app registration's API permissions page.",
  "500011":
    "The API (resource) is not provisioned in this tenant: check the scope, the cloud, and that the service exists in the tenant.",
  "700027":
    "Client assertion rejected: the certificate is not registered on the app, or its thumbprint does not match.",
  "700024": "Client assertion expired or not yet valid: check the clock and the federated token file.",
  "70021": "No federated credential matches the workload identity token's issuer/subject/audience.",
  "7000218":
    "The app requires a client credential: enable 'Allow public client flows' for ROPC or add a secret/certificate.",
  "1002012": "Invalid scope: client credentials need a scope ending in /.default.",
  "70011": "Invalid scope for this API: check the route's scope string.",
  "50058": "Silent sign-in failed: the cached session expired; the password will be used again.",
};

export interface AcquisitionFailure {
  /** "AADSTS7000215", "network", "throttled" or "unknown" — bounded, safe as a metric label. */
  error: string;
  /** Numeric AADSTS code, when Entra returned one. */
  aadsts?: string;
  hint: string;
  /** A one-line description safe to log and to show callers. */
  message: string;
  /** Milliseconds the identity provider asked us to wait (Retry-After), if any. */
  retryAfterMs?: number;
  /** HTTP status Entra answered with, if it answered. */
  status?: number;
  /** Entra's OAuth `error` (invalid_grant, interaction_required …), when it sent one. */
  oauthError?: string;
  /** Entra's `suberror` (consent_required, basic_action …), when it sent one. */
  subError?: string;
  /** Entra's claims challenge (a JSON string), when it sent one. */
  claims?: string;
}

const NETWORK_CODES = new Set(["network_error", "no_network_connectivity", "endpoints_resolution_error"]);

/** Extracts what we need from an msal-node error (AuthError/ServerError/ClientAuthError) or any Error. */
export function describeAcquisitionFailure(err: unknown): AcquisitionFailure {
  const e = err as {
    errorCode?: string;
    errorMessage?: string;
    errorNo?: string;
    status?: number;
    message?: string;
    retryAfterMs?: number;
  };
  const text = `${e.errorMessage ?? ""} ${e.message ?? ""}`;
  const code = e.errorNo && /^\d+$/.test(e.errorNo) ? e.errorNo : /AADSTS(\d+)/.exec(text)?.[1];
  const base: Pick<AcquisitionFailure, "retryAfterMs" | "status"> = {};
  if (e.retryAfterMs !== undefined) base.retryAfterMs = e.retryAfterMs;
  if (e.status !== undefined) base.status = e.status;
  if (code) {
    const firstLine = /AADSTS\d+:[^\r\n]*/.exec(text)?.[0] ?? `AADSTS${code}`;
    return {
      ...base,
      error: `AADSTS${code}`,
      aadsts: code,
      hint: AADSTS_HINTS[code] ?? `See https://login.microsoftonline.com/error?code=${code}`,
      message: firstLine.slice(0, 300),
    };
  }
  if (e.errorCode && NETWORK_CODES.has(e.errorCode)) {
    return {
      ...base,
      error: "network",
      hint: "The identity provider could not be reached: check DNS, egress to the authority host, and proxies.",
      message: `identity provider unreachable (${e.errorCode})`,
    };
  }
  if (e.status !== undefined && (e.status === 429 || e.status >= 500)) {
    return {
      ...base,
      error: "network",
      hint: "The identity provider is failing or throttling; the proxy backs off and retries.",
      message: `identity provider answered HTTP ${e.status}`,
    };
  }
  const fallback = (e.errorCode ? `${e.errorCode}: ` : "") + (e.errorMessage || e.message || String(err));
  return {
    ...base,
    error: "unknown",
    hint: "Unexpected error while acquiring the token; see the proxy log.",
    message: fallback.split(/\r?\n/)[0]!.slice(0, 300),
  };
}
