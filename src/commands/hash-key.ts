// entra-auth-proxy hash-key [--name <label>]
import { generateApiKey, SHA256_PREFIX, sha256Hex } from "../config/api-key-hash.ts";
import { type CliIO, EXIT_OK, parseCommandArgs, UsageError } from "./cli.ts";

const HELP = `Usage: entra-auth-proxy hash-key [--name <label>]

Generates a random API key (32 random bytes, base64url) and prints it with its sha256: form and a
routes.yaml snippet. Give the key to the caller (X-Api-Key header, or the password of HTTP Basic);
routes.yaml stores only the hash. The key is printed once and kept nowhere.

Options:
  -n, --name <label>  the key's name in the snippet (appears in logs), default "caller"
  -h, --help          show this help
`;

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseCommandArgs(argv, { name: { type: "string", short: "n" } });
  if (values.help) {
    io.stdout.write(HELP);
    return EXIT_OK;
  }
  const name = values.name ?? "caller";
  if (!/^[A-Za-z0-9][A-Za-z0-9._@-]*$/.test(name)) {
    throw new UsageError("--name may contain only letters, digits and . _ @ -");
  }
  const key = generateApiKey();
  const hash = `${SHA256_PREFIX}${sha256Hex(key)}`;
  io.stdout.write(
    [
      `key     ${key}`,
      `sha256  ${hash}`,
      "",
      "# routes.yaml, under the route's access: (only the hash is stored; give the key to the caller)",
      "apiKeys:",
      `  - name: ${name}`,
      `    sha256: "${hash}"`,
      "    # expires: 2027-12-31   # optional: the key is refused after this day (UTC)",
      "",
    ].join("\n"),
  );
  return EXIT_OK;
}
