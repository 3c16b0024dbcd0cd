# entra-auth-proxy container image.   Build: docker build -t entra-auth-proxy .   (see k8s/README.md)
#
# Node 24 runs the TypeScript sources directly (type stripping), so there is no compile step: the
# first stage only installs production dependencies and lays out /app; the final stage is the same
# Debian release the node image is built on, with only the `node` binary and /app — no npm, npx,
# yarn or corepack, and no demo (the Entra ID emulator and mock APIs stay out via .dockerignore).
# Pin by digest too (node:24.21.0-bookworm-slim@sha256:…, debian:bookworm-slim@sha256:…) once your
# registry mirror is known; the exact node tag is the floor.

FROM node:24.21.0-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev keeps the toolchain out, including the `node` devDependency (a second Node binary that
# only serves `npm exec` on developer machines). No production dependency needs an install script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY bin/ ./bin/
COPY src/ ./src/
COPY routes.yaml ./
# The launcher is the ENTRYPOINT through a symlink, so it must be executable whatever the checkout did.
RUN chmod 0755 bin/entra-auth-proxy.js

# The node image is debian:bookworm-slim plus Node's release tarball; its binary needs only glibc,
# libstdc++ and libgcc, which the slim base has. Node uses its own CA bundle, so no ca-certificates.
FROM debian:bookworm-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="entra-auth-proxy" \
      org.opencontainers.image.description="Authenticating reverse proxy that attaches Entra ID tokens for Power Platform, PowerApps, Power Automate and LCS APIs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
# CI adds what only it knows: --label org.opencontainers.image.source=… --label org.opencontainers.image.revision=$GIT_SHA
COPY --from=build /usr/local/bin/node /usr/local/bin/node
ENV NODE_ENV=production
# Caps V8's young generation, which otherwise grows with the host's memory (README, "Memory").
ENV NODE_OPTIONS="--max-semi-space-size=16"
WORKDIR /app
# Owned by root and read-only to the runtime user: the proxy never writes outside /tmp, so the
# container also runs with a read-only root filesystem.
COPY --from=build /app /app
# `entra-auth-proxy` on PATH, as in `npx entra-auth-proxy …`. There is no dist/ in the image, so the
# launcher runs src/main.ts.
RUN ln -s /app/bin/entra-auth-proxy.js /usr/local/bin/entra-auth-proxy
USER 10001:10001
# 8080 proxy traffic, 9090 admin (/healthz /readyz /metrics /status) — routes.yaml listen.port/adminPort.
EXPOSE 8080 9090
# Docker and Compose only (Kubernetes uses the probes in k8s/). The slim image has no curl, so Node's
# fetch asks the admin port; this assumes listen.adminPort 9090 on a host that includes 127.0.0.1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["entra-auth-proxy"]
# The path the Kubernetes ConfigMap is mounted at; with Docker: -v "$PWD/routes.yaml:/etc/entra-auth-proxy/routes.yaml:ro".
CMD ["serve", "--config", "/etc/entra-auth-proxy/routes.yaml"]
