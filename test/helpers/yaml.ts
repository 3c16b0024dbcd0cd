// routes.yaml for one identity under test, with one anonymous route per given service.
export function singleIdentityYaml(
  identityBlock: string,
  services: Array<"powerplatform" | "lcs"> = ["powerplatform"],
): string {
  const routes = services
    .map(
      (service) => `  - prefix: /${service}
    service: ${service}
    upstream: \${${service.toUpperCase()}_UPSTREAM}
    identity: under-test
    access: { anonymous: true }`,
    )
    .join("\n");
  return `listen: { host: 127.0.0.1 }
warmup: false
cloud: { authorityHost: \${DEMO_AUTHORITY_HOST} }
identities:
  under-test:
${identityBlock
  .trim()
  .split("\n")
  .map((l) => `    ${l}`)
  .join("\n")}
routes:
${routes}
`;
}
