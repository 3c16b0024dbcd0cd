// Tokens on behalf of callers (design.md "On-behalf-of"): per (identity, scope), a bounded LRU of users,
// each with its own TokenProvider — single-flight, refresh ahead, back-off, exactly as app tokens — fed
// by the caller's latest verified token. Entra's refusals become the caller's errors, never a back-off.
import { LRUCache } from "lru-cache";
import type { CredentialKind } from "../config/types.ts";
import { ProxyError } from "../errors.ts";
import type { AcquisitionFailure } from "./aadsts.ts";
import { type AcquiredToken, TokenAcquisitionError } from "./credentials.ts";
import {
  type AcquisitionEvent,
  type BackoffPolicy,
  type BearerTokens,
  PerIdentityScope,
  TokenProvider,
} from "./tokens.ts";

/** A caller whose inbound JWT was verified (src/access/jwt.ts VerifiedCaller). */
export interface OboCaller {
  /** `oid` (else `sub`): the cache key — tokens are never shared between users. */
  user: string;
  assertion: string;
  /** Epoch ms of the assertion's `exp`. */
  expiresAt: number;
}

export const DEFAULT_MAX_OBO_USERS = 10_000;

export interface OboTokenCacheOptions {
  identity: string;
  /** The identity's credential kind (a confidential client's). */
  kind: CredentialKind;
  scope: string;
  exchange: (assertion: string) => Promise<AcquiredToken>;
  /** Users kept; the least recently used is forgotten beyond it. */
  maxUsers?: number;
  now?: () => number;
  backoff?: BackoffPolicy;
  acquireTimeoutMs?: number;
  onAcquisition?: (event: AcquisitionEvent) => void;
}

const INVALID_TOKEN = 'Bearer error="invalid_token"';

export class OboTokenCache {
  readonly identity: string;
  readonly scope: string;
  readonly maxUsers: number;
  private readonly options: OboTokenCacheOptions;
  private readonly now: () => number;
  /** At most maxUsers users; the least recently used is dropped (and its timers stopped) first. */
  private readonly users: LRUCache<string, CallerTokens>;

  constructor(options: OboTokenCacheOptions) {
    this.options = options;
    this.identity = options.identity;
    this.scope = options.scope;
    this.maxUsers = options.maxUsers ?? DEFAULT_MAX_OBO_USERS;
    this.now = options.now ?? Date.now;
    this.users = new LRUCache({ max: this.maxUsers, dispose: (entry) => entry.close() });
  }

  /** The tokens of this caller, its latest verified token remembered for the next exchange. */
  forCaller(caller: OboCaller | undefined): BearerTokens {
    if (caller === undefined || caller.user === "") {
      // Unreachable with a valid config (onBehalfOf requires access.jwt); refuse rather than share.
      throw new ProxyError("unauthenticated", "this route needs the caller's own token", {
        headers: { "www-authenticate": INVALID_TOKEN },
      });
    }
    let entry = this.users.get(caller.user);
    if (!entry) {
      entry = new CallerTokens(this.options, this.now);
      this.users.set(caller.user, entry);
    }
    entry.assertion = caller.assertion;
    entry.assertionExpiresAt = caller.expiresAt;
    return entry;
  }

  /** Users cached now. */
  get size(): number {
    return this.users.size;
  }

  close(): void {
    this.users.clear(); // dispose closes each entry
  }
}

/** One user's tokens: a TokenProvider whose source exchanges the user's latest assertion. */
class CallerTokens implements BearerTokens {
  assertion = "";
  assertionExpiresAt = 0;
  /** The caller's error for an assertion Entra refused: that assertion is not sent again. */
  private refused: { assertion: string; error: ProxyError } | undefined;
  private readonly provider: TokenProvider;
  private readonly exchangeWithEntra: (assertion: string) => Promise<AcquiredToken>;
  private readonly now: () => number;
  private readonly api: string;
  private readonly identity: string;

  constructor(options: OboTokenCacheOptions, now: () => number) {
    this.exchangeWithEntra = options.exchange;
    this.now = now;
    this.api = options.scope;
    this.identity = options.identity;
    const providerOptions: ConstructorParameters<typeof TokenProvider>[0] = {
      identity: options.identity,
      scope: options.scope,
      now,
      source: { kind: options.kind, acquire: () => this.exchange() },
      reportTrigger: "on_behalf_of",
    };
    if (options.backoff) providerOptions.backoff = options.backoff;
    if (options.acquireTimeoutMs !== undefined) providerOptions.acquireTimeoutMs = options.acquireTimeoutMs;
    if (options.onAcquisition) providerOptions.onAcquisition = options.onAcquisition;
    this.provider = new TokenProvider(providerOptions);
  }

  peek(): string | undefined {
    // A refused assertion waits for the caller's next token instead of being refreshed with again.
    return this.provider.peek(this.refused?.assertion !== this.assertion);
  }

  get(): Promise<string> {
    if (this.refused?.assertion === this.assertion) return Promise.reject(this.refused.error);
    return this.provider.get();
  }

  renewAfterRejection(rejectedToken: string): Promise<string> {
    if (this.refused?.assertion === this.assertion) return Promise.reject(this.refused.error);
    return this.provider.renewAfterRejection(rejectedToken);
  }

  close(): void {
    this.provider.close();
  }

  private async exchange(): Promise<AcquiredToken> {
    const assertion = this.assertion;
    if (this.now() >= this.assertionExpiresAt) {
      // jose accepts a token up to a minute past exp (clock skew); Entra would not: never send it.
      const failure: AcquisitionFailure = {
        error: "assertion_expired",
        hint: "The caller's token has expired; the caller must get a new one.",
        message: "on-behalf-of: the caller's token has expired",
      };
      throw new TokenAcquisitionError(
        failure,
        new ProxyError("unauthenticated", "the caller's token has expired", {
          headers: { "www-authenticate": INVALID_TOKEN },
        }),
      );
    }
    try {
      return await this.exchangeWithEntra(assertion);
    } catch (err) {
      if (!(err instanceof TokenAcquisitionError)) throw err;
      const failure = withoutEntraText(err.failure);
      const callerError = callerErrorFor(failure, this.identity, this.api);
      if (callerError) this.refused = { assertion, error: callerError };
      throw new TokenAcquisitionError(failure, callerError);
    }
  }
}

/**
 * Entra's error text may name the user; logs and /status get the code and our own words only.
 */
function withoutEntraText(failure: AcquisitionFailure): AcquisitionFailure {
  const detail = [failure.oauthError, failure.subError].filter(Boolean).join("/");
  return {
    ...failure,
    message: `on-behalf-of exchange failed: ${failure.error}${detail ? ` (${detail})` : ""}`,
  };
}

const INTERACTION_SUBERRORS = new Set(["basic_action", "additional_action", "message_only"]);

/** What the caller gets when Entra refuses the exchange for a reason of the caller's; undefined for the IdP's. */
export function callerErrorFor(
  failure: AcquisitionFailure,
  identity: string,
  api: string,
): ProxyError | undefined {
  const aadsts = failure.aadsts ? `AADSTS${failure.aadsts}` : undefined;
  const extra = (hint: string) => (aadsts ? { aadsts, hint } : { hint });
  if (failure.aadsts === "65001" || failure.subError === "consent_required") {
    return new ProxyError(
      "consent_required",
      `admin consent is missing: the web API's app registration (identity "${identity}") has no granted delegated permission for ${api}`,
      extra(
        "An administrator must grant admin consent for this API on the web API's app registration (API permissions → Grant admin consent).",
      ),
    );
  }
  if (
    failure.oauthError === "interaction_required" ||
    failure.claims !== undefined ||
    (failure.subError !== undefined && INTERACTION_SUBERRORS.has(failure.subError))
  ) {
    const challenge =
      failure.claims !== undefined
        ? `Bearer error="insufficient_claims", claims="${Buffer.from(failure.claims).toString("base64")}"`
        : 'Bearer error="insufficient_claims"';
    return new ProxyError(
      "interaction_required",
      "the user must sign in again (multi-factor authentication or a conditional access policy)",
      {
        ...extra("Acquire a new token with the claims of the WWW-Authenticate challenge, interactively."),
        headers: { "www-authenticate": challenge },
      },
    );
  }
  if (failure.oauthError === "invalid_grant") {
    return new ProxyError("unauthenticated", "Entra ID refused the caller's token for the exchange", {
      ...extra("The caller's token cannot be exchanged: it must be issued for this web API and still valid."),
      headers: { "www-authenticate": INVALID_TOKEN },
    });
  }
  return undefined;
}

/** The on-behalf-of caches of one configuration, per identity and scope. */
export class OboTokenCaches extends PerIdentityScope<OboTokenCache> {}
