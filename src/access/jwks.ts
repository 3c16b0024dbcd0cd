// The signing keys of one inbound-JWT issuer (design.md "access"): the last good JWKS is kept and used
// while the endpoint fails (stale-if-error), is fetched again when old or when a token names a key it
// lacks, and failed fetches back off exponentially, so an outage never costs one fetch per request.
// jose's remote set fails every token once its keys are old and the endpoint is down, and fetches on
// every call meanwhile; hence this small owner of refresh and backoff around jose's local set.
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";

export interface JwksOptions {
  now?: () => number;
  /** Keys older than this are fetched again; they stay in use until a fetch succeeds. */
  maxAgeMs?: number;
  /** A token naming an unknown key causes a fetch only when the keys are at least this old. */
  cooldownMs?: number;
  timeoutMs?: number;
  /** Wait after the first failed fetch; doubled after each further failure, up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** No key to check the token can be had: the JWKS endpoint fails and nothing usable is kept. */
export class JwksUnavailable extends Error {
  /** Milliseconds until the next fetch may be tried. */
  readonly retryAfterMs: number;

  constructor(retryAfterMs: number) {
    super("the JWKS cannot be fetched");
    this.name = "JwksUnavailable";
    this.retryAfterMs = retryAfterMs;
  }
}

type LocalKeys = ReturnType<typeof createLocalJWKSet>;

export class JwksKeySource {
  readonly #url: string;
  readonly #now: () => number;
  readonly #maxAgeMs: number;
  readonly #cooldownMs: number;
  readonly #timeoutMs: number;
  readonly #initialBackoffMs: number;
  readonly #maxBackoffMs: number;
  #keys: LocalKeys | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #failures = 0;
  #nextAttemptAt = Number.NEGATIVE_INFINITY;
  #pending: Promise<boolean> | undefined;

  constructor(url: URL, options: JwksOptions = {}) {
    this.#url = url.href;
    this.#now = options.now ?? Date.now;
    this.#maxAgeMs = options.maxAgeMs ?? 600_000;
    this.#cooldownMs = options.cooldownMs ?? 30_000;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#initialBackoffMs = options.initialBackoffMs ?? 1_000;
    this.#maxBackoffMs = options.maxBackoffMs ?? 60_000;
  }

  /** For `jwtVerify`: the key a token's header names; throws `JwksUnavailable` when none can be had. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    if (this.#keys === undefined) await this.#refresh();
    // Old keys are still served while a fresh set is fetched, so a slow JWKS endpoint delays no caller.
    else if (this.#now() - this.#fetchedAt >= this.#maxAgeMs) void this.#refresh();
    const keys = this.#keys;
    if (keys === undefined) throw new JwksUnavailable(this.#retryAfterMs());
    try {
      return await keys(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      // Keys fetched moments ago are the issuer's current ones: the token's key is not among them.
      if (this.#now() - this.#fetchedAt < this.#cooldownMs) throw err;
      // The issuer may have rotated its keys; if they cannot be fetched, the token cannot be judged.
      if (!(await this.#refresh())) throw new JwksUnavailable(this.#retryAfterMs());
      return await this.#keys!(header, token);
    }
  };

  /** One fetch at a time, none during backoff; true when a fresh set was obtained. Never rejects. */
  #refresh(): Promise<boolean> {
    if (this.#pending) return this.#pending;
    if (this.#now() < this.#nextAttemptAt) return Promise.resolve(false);
    const pending = this.#fetchKeys().then(
      (keys) => {
        this.#keys = keys;
        this.#fetchedAt = this.#now();
        this.#failures = 0;
        this.#nextAttemptAt = Number.NEGATIVE_INFINITY;
        return true;
      },
      () => {
        this.#failures += 1;
        const backoff = Math.min(this.#initialBackoffMs * 2 ** (this.#failures - 1), this.#maxBackoffMs);
        this.#nextAttemptAt = this.#now() + backoff;
        return false;
      },
    );
    this.#pending = pending.finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #fetchKeys(): Promise<LocalKeys> {
    const response = await fetch(this.#url, {
      headers: { accept: "application/json, application/jwk-set+json" },
      redirect: "manual",
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new Error(`JWKS endpoint answered ${response.status}`);
    }
    // createLocalJWKSet checks the document's shape itself.
    return createLocalJWKSet((await response.json()) as JSONWebKeySet);
  }

  #retryAfterMs(): number {
    return Math.max(0, this.#nextAttemptAt - this.#now());
  }
}
