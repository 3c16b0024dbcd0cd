// An unsigned JWT with the given claims: the token cache reads claims without verifying them.
import { UnsecuredJWT } from "jose";

export function jwt(claims: Record<string, unknown>): string {
  return new UnsecuredJWT(claims).encode();
}
