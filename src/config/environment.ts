// The only place the config loader reads the environment: ${VAR} and ${VAR:-default} in routes.yaml
// string values, the AKS workload-identity defaults and the egress proxy variables. Everything read here ends up resolved in
// ProxyConfig, so no other module needs to read these variables again.

/** What the AKS workload-identity webhook injects into the pod; an empty variable counts as unset. */
export interface WorkloadIdentityEnvironment {
  tenantId?: string;
  clientId?: string;
  tokenFile?: string;
}

export function workloadIdentityEnvironment(env: NodeJS.ProcessEnv): WorkloadIdentityEnvironment {
  const read = (name: string) => (env[name] === "" ? undefined : env[name]);
  const found: WorkloadIdentityEnvironment = {};
  const tenantId = read("AZURE_TENANT_ID");
  const clientId = read("AZURE_CLIENT_ID");
  const tokenFile = read("AZURE_FEDERATED_TOKEN_FILE");
  if (tenantId !== undefined) found.tenantId = tenantId;
  if (clientId !== undefined) found.clientId = clientId;
  if (tokenFile !== undefined) found.tokenFile = tokenFile;
  return found;
}

/** The egress proxy variables, each with the name it was read from (for error messages). */
export interface EgressEnvironment {
  proxy?: { variable: string; value: string };
  noProxy?: string[];
}

/**
 * HTTPS_PROXY and NO_PROXY, the lower-case form winning as curl and Node (NODE_USE_ENV_PROXY) have
 * it; an empty variable counts as unset. Only the HTTPS proxy: every Microsoft endpoint is https.
 */
export function egressEnvironment(env: NodeJS.ProcessEnv): EgressEnvironment {
  const first = (...names: string[]) => names.find((name) => env[name] !== undefined && env[name] !== "");
  const found: EgressEnvironment = {};
  const proxyVariable = first("https_proxy", "HTTPS_PROXY");
  if (proxyVariable !== undefined) found.proxy = { variable: proxyVariable, value: env[proxyVariable]! };
  const noProxyVariable = first("no_proxy", "NO_PROXY");
  if (noProxyVariable !== undefined) {
    found.noProxy = splitNoProxy(env[noProxyVariable]!);
  }
  return found;
}

/** NO_PROXY's form: entries separated by commas (and blanks). */
export function splitNoProxy(value: string): string[] {
  return value.split(/[\s,]+/).filter((entry) => entry !== "");
}

/** Keys whose values are secrets (clientSecret, password, passphrase …), not the files holding them. */
export function isSecretKey(key: string): boolean {
  return /secret|password|passphrase/i.test(key) && !/file$/i.test(key);
}

export type Interpolation = { ok: true; value: string } | { ok: false; message: string };

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Substitutes ${VAR} and ${VAR:-default} in one string value; "$${" writes a literal "${".
 * Substitution happens after YAML parsing, so a value can hold any characters.
 */
export function interpolateEnv(
  text: string,
  env: NodeJS.ProcessEnv,
  options: { secret?: boolean } = {},
): Interpolation {
  if (!text.includes("${")) return { ok: true, value: text };
  let out = "";
  let i = 0;
  const missing: string[] = [];
  while (i < text.length) {
    const start = text.indexOf("$", i);
    if (start === -1) {
      out += text.slice(i);
      break;
    }
    out += text.slice(i, start);
    if (text.startsWith("$${", start)) {
      out += "${";
      i = start + 3;
      continue;
    }
    if (!text.startsWith("${", start)) {
      out += "$";
      i = start + 1;
      continue;
    }
    const end = text.indexOf("}", start + 2);
    if (end === -1) {
      return { ok: false, message: 'unterminated "${" (write "$${" for a literal "${")' };
    }
    const expression = text.slice(start + 2, end);
    const separator = expression.indexOf(":-");
    const name = separator === -1 ? expression : expression.slice(0, separator);
    const fallback = separator === -1 ? undefined : expression.slice(separator + 2);
    if (!NAME.test(name)) {
      return {
        ok: false,
        message: `"\${${expression}}" is not a valid reference; use \${NAME} or \${NAME:-default} (NAME: letters, digits, _)`,
      };
    }
    if (fallback?.includes("${")) {
      return { ok: false, message: `nested references in a default are not supported: "\${${name}:-…}"` };
    }
    const value = env[name];
    if (fallback !== undefined) {
      // Shell semantics of ":-": the default also replaces an empty value.
      out += value === undefined || value === "" ? fallback : value;
    } else if (value === undefined) {
      missing.push(name);
    } else {
      out += value;
    }
    i = end + 1;
  }
  if (missing.length > 0) {
    const names = [...new Set(missing)];
    const first = names[0]!;
    // A default for a secret would end up in routes.yaml (and in git): never suggest one.
    const hint = options.secret
      ? "a secret has no default: set the variable, or read the secret from a file (clientSecretFile, passwordFile)"
      : `write \${${first}:-default} to give a default`;
    return {
      ok: false,
      message:
        names.length === 1
          ? `environment variable ${first} is not set (${hint})`
          : `environment variables ${names.join(", ")} are not set`,
    };
  }
  return { ok: true, value: out };
}

/** Where OTLP traces go (design.md "Tracing"); undefined when no endpoint is set. */
export interface TracingSettings {
  /** The full traces URL, e.g. http://collector:4318/v1/traces. */
  url: string;
  protocol: "http/protobuf" | "http/json";
}

export function tracingEnvironment(env: NodeJS.ProcessEnv): TracingSettings | undefined {
  const read = (name: string) => (env[name] === "" ? undefined : env[name]);
  const tracesEndpoint = read("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const endpoint = read("OTEL_EXPORTER_OTLP_ENDPOINT");
  // The signal-specific endpoint is used as given; the general one gets the traces path appended.
  const url = tracesEndpoint ?? (endpoint ? `${endpoint.replace(/\/$/, "")}/v1/traces` : undefined);
  if (url === undefined) return undefined;
  const protocol = read("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") ?? read("OTEL_EXPORTER_OTLP_PROTOCOL");
  return { url, protocol: protocol === "http/json" ? "http/json" : "http/protobuf" };
}
