// The Microsoft services and clouds routes.yaml can name (design.md table). A preset supplies a
// route's default upstream and token scope; `upstream:` and `scope:` override each independently.
// Endpoints are only built in where Microsoft documents them: for sovereign clouds the service hosts
// are not known here, so those routes must name both upstream and scope (never guessed).
import type { CloudConfig, CloudName, ServiceName } from "./types.ts";

export const SERVICE_NAMES = [
  "powerplatform",
  "powerapps",
  "flow",
  "lcs",
] as const satisfies readonly ServiceName[];

export const CLOUD_NAMES = [
  "public",
  "usgov",
  "usgovhigh",
  "dod",
  "china",
] as const satisfies readonly CloudName[];

/** Entra ID authority host per national cloud (Microsoft identity platform "National clouds"). */
export const CLOUD_AUTHORITY_HOSTS: Readonly<Record<CloudName, string>> = {
  public: "https://login.microsoftonline.com",
  usgov: "https://login.microsoftonline.us",
  usgovhigh: "https://login.microsoftonline.us",
  dod: "https://login.microsoftonline.us",
  china: "https://login.chinacloudapi.cn",
};

/**
 * LCS regional instances with their own API endpoint `https://lcsapi.<region>.lcs.dynamics.com`, as
 * listed in Microsoft's "Available geographies for Dynamics 365 finance and operations apps"
 * (Supported geographies and endpoints): Europe, France, Norway, South Africa, Switzerland, United Arab
 * Emirates. Without `region:` the United States/global instance lcsapi.lcs.dynamics.com is used.
 * Azure Government (gov.lcs.microsoftdynamics.us) and China (lcs.dynamics.cn) are separate clouds.
 */
export const LCS_REGIONS = ["eu", "fr", "no", "sa", "ch", "uae"] as const;
export type LcsRegion = (typeof LCS_REGIONS)[number];

export const POWERPLATFORM_UPSTREAM = "https://api.powerplatform.com";
export const POWERPLATFORM_SCOPE = "https://api.powerplatform.com/.default";
export const POWERAPPS_UPSTREAM = "https://api.powerapps.com";
/** The resource is "https://service.powerapps.com/", so the scope has a double slash. */
export const POWERAPPS_SCOPE = "https://service.powerapps.com//.default";
/** The resource is "https://service.flow.microsoft.com/", so the scope has a double slash. */
export const FLOW_SCOPE = "https://service.flow.microsoft.com//.default";

/** LCS API base URL and scope for a region (global instance when region is undefined). */
export function lcsEndpoints(region?: LcsRegion): { upstream: string; scope: string } {
  const host = region ? `lcsapi.${region}.lcs.dynamics.com` : "lcsapi.lcs.dynamics.com";
  return { upstream: `https://${host}`, scope: `https://${host}//.default` };
}

export function isLcsRegion(value: string): value is LcsRegion {
  return (LCS_REGIONS as readonly string[]).includes(value);
}

/** Whether the built-in service endpoints apply: the public cloud, or a custom authority (emulators, tests). */
export function presetsApplyIn(cloud: CloudConfig): boolean {
  return cloud.name === "public" || cloud.name === "custom";
}

export function resolveCloud(input: CloudName | { authorityHost: string }): CloudConfig {
  if (typeof input === "string") return { name: input, authorityHost: CLOUD_AUTHORITY_HOSTS[input] };
  return { name: "custom", authorityHost: input.authorityHost.replace(/\/+$/, "") };
}

export interface RouteTargetInput {
  service?: ServiceName | undefined;
  upstream?: string | undefined;
  scope?: string | undefined;
  /** flow: the trigger URL without its query (the caller parses and checks the full url). */
  flowUpstream?: string | undefined;
  region?: string | undefined;
}

/** A problem with one key of the route; `key` names which (its position is reported). */
export interface RouteTargetProblem {
  key: "service" | "upstream" | "scope" | "url" | "region";
  message: string;
}

export interface RouteTarget {
  upstream?: string;
  scope?: string;
  /** lcs: the region, lower-cased. */
  region?: LcsRegion;
  problems: RouteTargetProblem[];
}

/**
 * A route's upstream and scope: explicit values win, each on its own; otherwise the preset's
 * (for the route's `region:` with lcs). Everything that cannot be resolved is returned as a problem.
 */
export function resolveRouteTarget(input: RouteTargetInput, cloud: CloudConfig): RouteTarget {
  const problems: RouteTargetProblem[] = [];
  const { service } = input;
  const out: RouteTarget = { problems };

  if (input.region !== undefined && service !== "lcs") {
    problems.push({ key: "region", message: "region applies only to service: lcs" });
  }
  if (input.flowUpstream !== undefined && service !== "flow") {
    problems.push({
      key: "url",
      message: "url is the HTTP-trigger URL of a service: flow route; other routes use upstream",
    });
  }

  if (service === undefined) {
    if (input.upstream === undefined) {
      problems.push({ key: "upstream", message: "upstream is required when the route names no service" });
    }
    if (input.scope === undefined) {
      problems.push({
        key: "scope",
        message:
          'scope is required when the route names no service (e.g. "https://api.example.com/.default")',
      });
    }
    if (input.upstream !== undefined) out.upstream = input.upstream;
    if (input.scope !== undefined) out.scope = input.scope;
    return out;
  }

  let preset: { upstream?: string; scope: string };
  switch (service) {
    case "powerplatform":
      preset = { upstream: POWERPLATFORM_UPSTREAM, scope: POWERPLATFORM_SCOPE };
      break;
    case "powerapps":
      preset = { upstream: POWERAPPS_UPSTREAM, scope: POWERAPPS_SCOPE };
      break;
    case "flow":
      preset = { scope: FLOW_SCOPE };
      if (input.upstream !== undefined) {
        problems.push({
          key: "upstream",
          message: "a flow route takes its full HTTP-trigger URL in url:, not upstream:",
        });
      }
      if (input.flowUpstream === undefined) {
        problems.push({
          key: "service",
          message:
            "a flow route needs url: — the flow's HTTP-trigger URL (https://….environment.api.powerplatform.com/powerautomate/automations/direct/workflows/…/triggers/manual/paths/invoke?api-version=1)",
        });
      }
      break;
    case "lcs": {
      let region: LcsRegion | undefined;
      if (input.region !== undefined) {
        const wanted = input.region.toLowerCase();
        if (isLcsRegion(wanted)) region = wanted;
        else {
          problems.push({
            key: "region",
            message: `unknown LCS region "${input.region}"; valid regions: ${LCS_REGIONS.join(", ")} (omit region for the global instance lcs.dynamics.com)`,
          });
        }
      }
      if (region) out.region = region;
      preset = lcsEndpoints(region);
      break;
    }
  }

  const upstream = service === "flow" ? input.flowUpstream : input.upstream;
  if (!presetsApplyIn(cloud)) {
    // Sovereign clouds host these APIs elsewhere; a wrong guess would send tokens to the wrong place.
    const missing = [
      ...(upstream === undefined && service !== "flow" ? ["upstream"] : []),
      ...(input.scope === undefined ? ["scope"] : []),
    ];
    if (missing.length > 0) {
      problems.push({
        key: "service",
        message: `service ${service} has no built-in endpoints for the ${cloud.name} cloud; set ${missing.join(" and ")} explicitly for this route (the public-cloud defaults are never assumed)`,
      });
    }
  }

  const resolvedUpstream = upstream ?? (service === "flow" ? undefined : preset.upstream);
  if (resolvedUpstream !== undefined) out.upstream = resolvedUpstream;
  out.scope = input.scope ?? preset.scope;
  return out;
}

/** Default methods of a route: POST for flow triggers, otherwise every standard method but CONNECT/TRACE. */
export function defaultMethods(service: ServiceName | undefined): string[] {
  return service === "flow" ? ["POST"] : ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
}
