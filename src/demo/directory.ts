/** What the emulated tenants contain: app registrations, users, managed identities and known resources. */
import { randomUUID } from "node:crypto";
import type { JSONWebKeySet } from "jose";
import { thumbprints } from "./pki.ts";

/** A client secret; `expires` (ms since epoch, Date or ISO string) makes it fail with AADSTS7000222 after that. */
export type ClientSecret = string | { value: string; expires: number | string | Date };

/** A federated identity credential (workload identity): assertions from `issuer` about `subject`. */
export interface FederatedCredential {
  issuer: string;
  subject: string;
  jwks: JSONWebKeySet;
  /** default `api://AzureADTokenExchange` */
  audience?: string;
}

export interface AppRegistrationInput {
  tenantId: string;
  clientId: string;
  displayName?: string;
  /** Object id of the service principal (`oid` of app tokens). */
  objectId?: string;
  clientSecrets?: ClientSecret[];
  /** Secrets that were valid once and are now past their end date (AADSTS7000222). */
  expiredSecrets?: string[];
  /** PEM certificates whose private keys may sign `client_assertion`s. */
  certificates?: string[];
  federatedIssuers?: FederatedCredential[];
  /** App roles granted to the service principal (`roles` of app tokens). */
  roles?: string[];
  /** "Allow public client flows" (ROPC without a client credential). */
  publicClient?: boolean;
}

export interface UserInput {
  tenantId: string;
  username: string;
  password: string;
  objectId?: string;
  displayName?: string;
  mfaRequired?: boolean;
  /** Apps the user (or an admin) consented to; omitted = consent granted to every app. */
  consentedClientIds?: string[];
}

export interface ManagedIdentityInput {
  tenantId: string;
  /** Omit for the system-assigned identity. */
  clientId?: string;
  objectId: string;
  roles?: string[];
}

export interface RegisteredCertificate {
  pem: string;
  thumbprintSha1: string;
  thumbprintSha256: string;
}

export interface AppRegistration {
  tenantId: string;
  clientId: string;
  displayName: string;
  objectId: string;
  secrets: Array<{ value: string; expiresAt: number | undefined }>;
  certificates: RegisteredCertificate[];
  federatedIssuers: Array<Required<FederatedCredential>>;
  roles: string[];
  publicClient: boolean;
}

export interface User {
  tenantId: string;
  username: string;
  password: string;
  objectId: string;
  displayName: string;
  mfaRequired: boolean;
  consentedClientIds: string[] | undefined;
}

export interface ManagedIdentity {
  tenantId: string;
  clientId: string;
  objectId: string;
  roles: string[];
  systemAssigned: boolean;
}

const DEFAULT_FEDERATED_AUDIENCE = "api://AzureADTokenExchange";

export class Directory {
  readonly #tenants = new Set<string>();
  readonly #apps = new Map<string, AppRegistration>();
  readonly #users = new Map<string, User>();
  readonly #managedIdentities: ManagedIdentity[] = [];
  readonly #resources = new Set<string>();

  addApp(input: AppRegistrationInput): AppRegistration {
    const app: AppRegistration = {
      tenantId: input.tenantId,
      clientId: input.clientId,
      displayName: input.displayName ?? `app-${input.clientId.slice(0, 8)}`,
      objectId: input.objectId ?? randomUUID(),
      secrets: [
        ...(input.clientSecrets ?? []).map(normaliseSecret),
        ...(input.expiredSecrets ?? []).map((value) => ({ value, expiresAt: 0 })),
      ],
      certificates: (input.certificates ?? []).map((pem) => ({ pem, ...thumbprints(pem) })),
      federatedIssuers: (input.federatedIssuers ?? []).map((f) => ({
        ...f,
        audience: f.audience ?? DEFAULT_FEDERATED_AUDIENCE,
      })),
      roles: input.roles ?? [],
      publicClient: input.publicClient ?? false,
    };
    this.#tenants.add(app.tenantId.toLowerCase());
    this.#apps.set(key(app.tenantId, app.clientId), app);
    return app;
  }

  addUser(input: UserInput): User {
    const user: User = {
      tenantId: input.tenantId,
      username: input.username,
      password: input.password,
      objectId: input.objectId ?? randomUUID(),
      displayName: input.displayName ?? input.username.split("@")[0] ?? input.username,
      mfaRequired: input.mfaRequired ?? false,
      consentedClientIds: input.consentedClientIds,
    };
    this.#tenants.add(user.tenantId.toLowerCase());
    this.#users.set(key(user.tenantId, user.username), user);
    return user;
  }

  addManagedIdentity(input: ManagedIdentityInput): ManagedIdentity {
    const systemAssigned = input.clientId === undefined;
    if (systemAssigned && this.#managedIdentities.some((mi) => mi.systemAssigned)) {
      throw new Error("the emulated host already has a system-assigned managed identity");
    }
    const mi: ManagedIdentity = {
      tenantId: input.tenantId,
      clientId: input.clientId ?? randomUUID(),
      objectId: input.objectId,
      roles: input.roles ?? [],
      systemAssigned,
    };
    this.#tenants.add(mi.tenantId.toLowerCase());
    this.#managedIdentities.push(mi);
    return mi;
  }

  addResource(audience: string): void {
    this.#resources.add(audience);
  }

  hasTenant(tenantId: string): boolean {
    return this.#tenants.has(tenantId.toLowerCase());
  }

  findApp(tenantId: string, clientId: string): AppRegistration | undefined {
    return this.#apps.get(key(tenantId, clientId));
  }

  findUser(tenantId: string, username: string): User | undefined {
    return this.#users.get(key(tenantId, username));
  }

  findUserByObjectId(tenantId: string, objectId: string): User | undefined {
    for (const user of this.#users.values()) {
      if (user.tenantId === tenantId && user.objectId === objectId) return user;
    }
    return undefined;
  }

  /** App Service picks the system-assigned identity unless a user-assigned one is named. */
  findManagedIdentity(select: { clientId?: string; objectId?: string }): ManagedIdentity | undefined {
    if (select.clientId) return this.#managedIdentities.find((mi) => mi.clientId === select.clientId);
    if (select.objectId) return this.#managedIdentities.find((mi) => mi.objectId === select.objectId);
    return this.#managedIdentities.find((mi) => mi.systemAssigned);
  }

  /** Until a resource is added every audience is accepted; afterwards unknown ones get AADSTS500011. */
  isKnownResource(audience: string): boolean {
    return this.#resources.size === 0 || this.#resources.has(audience);
  }
}

function key(tenantId: string, id: string): string {
  return `${tenantId.toLowerCase()}\n${id.toLowerCase()}`;
}

function normaliseSecret(secret: ClientSecret): { value: string; expiresAt: number | undefined } {
  if (typeof secret === "string") return { value: secret, expiresAt: undefined };
  return { value: secret.value, expiresAt: new Date(secret.expires).getTime() };
}
