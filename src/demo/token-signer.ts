/** The emulator's signing key: a fresh RSA key per run, published as a JWKS, used to sign RS256 JWTs. */
import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  type JSONWebKeySet,
  type JWTPayload,
  SignJWT,
} from "jose";

export class TokenSigner {
  readonly kid: string;
  readonly #privateKey: CryptoKey;
  readonly #jwks: JSONWebKeySet;

  private constructor(kid: string, privateKey: CryptoKey, jwks: JSONWebKeySet) {
    this.kid = kid;
    this.#privateKey = privateKey;
    this.#jwks = jwks;
  }

  static async create(): Promise<TokenSigner> {
    const { publicKey, privateKey } = await generateKeyPair("RS256", { modulusLength: 2048 });
    const jwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(jwk);
    // Microsoft publishes x5t equal to kid; the verifiers only need kid, kty, n, e.
    return new TokenSigner(kid, privateKey, { keys: [{ ...jwk, kid, x5t: kid, use: "sig", alg: "RS256" }] });
  }

  /** A copy of the public key set (what `/discovery/v2.0/keys` serves). */
  publicJwks(): JSONWebKeySet {
    return structuredClone(this.#jwks);
  }

  /** Signs the claims exactly as given (no defaults added). */
  sign(claims: JWTPayload): Promise<string> {
    return new SignJWT(claims)
      .setProtectedHeader({ typ: "JWT", alg: "RS256", kid: this.kid, x5t: this.kid })
      .sign(this.#privateKey);
  }
}
