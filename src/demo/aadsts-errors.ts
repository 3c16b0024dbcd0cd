/**
 * Entra ID (AADSTS) errors as the token endpoint sends them: the OAuth `error`, the HTTP status, and an
 * `error_description` that starts with `AADSTS<code>: ` and ends with the trace/correlation/timestamp block.
 * Messages follow the wording Entra uses, so hints keyed on the codes behave as in production.
 */

export class AadstsError extends Error {
  readonly code: number;
  readonly error: string;
  readonly status: number;
  readonly suberror: string | undefined;
  /** A claims challenge (JSON) the client must satisfy, sent with interaction_required. */
  readonly claims: string | undefined;

  constructor(
    code: number,
    error: string,
    status: number,
    message: string,
    suberror?: string,
    claims?: string,
  ) {
    super(message);
    this.name = "AadstsError";
    this.code = code;
    this.error = error;
    this.status = status;
    this.suberror = suberror;
    this.claims = claims;
  }
}

const err = (code: number, error: string, status: number, message: string, suberror?: string) =>
  new AadstsError(code, error, status, message, suberror);

export const aadsts = {
  missingParameter: (name: string) =>
    err(900144, "invalid_request", 400, `The request body must contain the following parameter: '${name}'.`),
  unsupportedGrantType: (grantType: string) =>
    err(70003, "unsupported_grant_type", 400, `The app requested an unsupported grant type '${grantType}'.`),
  tenantNotFound: (tenant: string) =>
    err(
      90002,
      "invalid_tenant",
      400,
      `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
    ),
  appNotFound: (clientId: string, tenant: string) =>
    err(
      700016,
      "unauthorized_client",
      400,
      `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
    ),
  invalidClientSecret: (clientId: string) =>
    err(
      7000215,
      "invalid_client",
      401,
      `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
    ),
  expiredClientSecret: (clientId: string) =>
    err(
      7000222,
      "invalid_client",
      401,
      `The provided client secret keys for app '${clientId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`,
    ),
  credentialRequired: () =>
    err(
      7000218,
      "invalid_client",
      401,
      "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    ),
  invalidAssertionType: () =>
    err(
      90014,
      "invalid_request",
      400,
      "The required field 'client_assertion_type' is missing or is not 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
    ),
  assertionKeyNotRegistered: (clientId: string, thumbprint: string) =>
    err(
      700027,
      "invalid_client",
      401,
      `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${clientId}'.]`,
    ),
  assertionSignatureInvalid: () =>
    err(700027, "invalid_client", 401, "Client assertion failed signature validation."),
  assertionMalformed: () => err(50027, "invalid_request", 400, "JWT token is invalid or malformed."),
  assertionClientMismatch: () =>
    err(
      700021,
      "invalid_client",
      401,
      "Client assertion application identifier doesn't match 'client_id' parameter.",
    ),
  assertionAudienceInvalid: () =>
    err(700023, "invalid_client", 401, "Client assertion audience claim does not match Realm issuer."),
  assertionExpired: () =>
    err(700024, "invalid_client", 401, "Client assertion is not within its valid time range."),
  federatedIssuerNotFound: (issuer: string) =>
    err(
      700211,
      "invalid_client",
      401,
      `No matching federated identity record found for presented assertion issuer '${issuer}'.`,
    ),
  federatedSubjectNotFound: (subject: string) =>
    err(
      700213,
      "invalid_client",
      401,
      `No matching federated identity record found for presented assertion subject '${subject}'.`,
    ),
  federatedAudienceNotFound: (audience: string) =>
    err(
      700212,
      "invalid_client",
      401,
      `No matching federated identity record found for presented assertion audience '${audience}'.`,
    ),
  invalidScopeForClientCredentials: (scope: string) =>
    err(
      1002012,
      "invalid_scope",
      400,
      `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
    ),
  multipleResources: () =>
    err(
      28000,
      "invalid_scope",
      400,
      "Provided value for the input parameter scope is not valid because it contains more than one resource. Scope is not valid.",
    ),
  resourceNotFound: (resource: string, tenant: string) =>
    err(
      500011,
      "invalid_resource",
      400,
      `The resource principal named ${resource} was not found in the tenant named ${tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`,
    ),
  badCredentials: () =>
    err(50126, "invalid_grant", 400, "Error validating credentials due to invalid username or password."),
  mfaRequired: (resource: string) =>
    err(
      50076,
      "invalid_grant",
      400,
      `Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '${resource}'.`,
      "basic_action",
    ),
  consentRequired: (clientId: string, displayName: string) =>
    err(
      65001,
      "invalid_grant",
      400,
      `The user or administrator has not consented to use the application with ID '${clientId}' named '${displayName}'. Send an interactive authorization request for this user and resource.`,
      "consent_required",
    ),
  oboAssertionInvalid: (why: string) =>
    err(50013, "invalid_grant", 400, `Assertion failed signature validation. [Reason - ${why}]`),
  oboAssertionExpired: () =>
    err(
      500133,
      "invalid_grant",
      400,
      "Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token.",
    ),
  oboTokenUseInvalid: () =>
    err(
      70003,
      "invalid_request",
      400,
      "The request must carry requested_token_use=on_behalf_of for the jwt-bearer grant.",
    ),
  /** Conditional access (MFA) for the downstream API: the client must step up with these claims. */
  oboInteractionRequired: (resource: string, claims: string) =>
    new AadstsError(
      50076,
      "interaction_required",
      400,
      `Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '${resource}'.`,
      "basic_action",
      claims,
    ),
  invalidRefreshToken: () =>
    err(9002313, "invalid_grant", 400, "Invalid request. Request is malformed or invalid."),
  refreshTokenClientMismatch: () =>
    err(
      70000,
      "invalid_grant",
      400,
      "Provided grant is invalid or malformed. The refresh token was issued to a different client.",
    ),
  serviceError: () =>
    err(
      50000,
      "server_error",
      500,
      "There was an error issuing a token or an issue with our sign-in service.",
    ),
};

export interface ErrorContext {
  traceId: string;
  correlationId: string;
  /** ms since epoch */
  now: number;
  /** base URL for `error_uri` */
  baseUrl: string;
}

/** Entra's `timestamp` format: `2024-05-01 12:34:56Z`. */
export function entraTimestamp(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")}Z`;
}

/** The JSON body Entra sends for an error, byte-for-byte in shape. */
export function aadstsErrorBody(e: AadstsError, ctx: ErrorContext): Record<string, unknown> {
  const timestamp = entraTimestamp(ctx.now);
  return {
    error: e.error,
    error_description: `AADSTS${e.code}: ${e.message}\r\nTrace ID: ${ctx.traceId}\r\nCorrelation ID: ${ctx.correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [e.code],
    timestamp,
    trace_id: ctx.traceId,
    correlation_id: ctx.correlationId,
    error_uri: `${ctx.baseUrl}/error?code=${e.code}`,
    ...(e.suberror ? { suberror: e.suberror } : {}),
    ...(e.claims ? { claims: e.claims } : {}),
  };
}
