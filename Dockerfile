# syntax=docker/dockerfile:1
#
# Concord's production image: Node 24 runs the broker's TypeScript sources directly (type
# stripping); the `concord` CLI (bin/concord.js) runs the JavaScript compiled to dist/ in the build
# stage, as it does on any Node from 20.19 on (package.json `engines`). Only the production
# dependencies are installed in the image.
#
#   docker build -t concord .                     # the production image (the last stage)
#   docker build -t concord-demo --target demo .  # + the demo partner IdPs (docker-compose.yml)
#
# No secrets are baked in: CONCORD_ADMIN_TOKEN, CONCORD_SECRETS_KEY and the partners' client
# secrets come from the environment at run time. The image carries config/concord.yaml only (every
# setting is overridable by CONCORD_* variables); mount clients and participants into
# /app/config, or register them through the admin API.

ARG NODE_IMAGE=node:24-slim

# --- dependencies: production only (`node` and the other devDependencies stay out) --------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# The npm workspace concord-verify (packages/verify): npm ci links it; the broker runs its sources (below).
COPY packages/verify/package.json ./packages/verify/package.json
# --ignore-scripts: no install script of any dependency runs at build time (none needs one).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# --- build: the compiled JavaScript (dist/) that bin/concord.js runs -----------------------------
# Its dependencies (TypeScript, types) stay in this stage; only dist/ leaves it.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY packages/verify/package.json ./packages/verify/package.json
RUN npm ci --ignore-scripts --no-audit --no-fund
# concord-verify's declarations first: the broker's build reads them (tsconfig.build.json paths).
COPY packages/verify/tsconfig.build.json ./packages/verify/tsconfig.build.json
COPY packages/verify/src ./packages/verify/src
RUN node_modules/.bin/tsc -p packages/verify/tsconfig.build.json
COPY src ./src
RUN node_modules/.bin/tsc -p tsconfig.build.json

# --- the application, owned by root and read-only to the user it runs as -------------------------
FROM ${NODE_IMAGE} AS app
WORKDIR /app
ENV NODE_ENV=production \
    CONCORD_CONFIG_DIR=/app/config \
    CONCORD_HOST=0.0.0.0
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY --from=build /app/dist ./dist
# concord-verify's sources: the broker's /me checks DPoP proofs with it (package.json "imports").
COPY packages/verify/package.json ./packages/verify/package.json
COPY packages/verify/src ./packages/verify/src
COPY views ./views
COPY config/concord.yaml ./config/concord.yaml
USER node

# --- the demo partner IdPs (docker-compose.yml): `node demo/partner-idp.ts acme|globex [port]` --
FROM app AS demo
COPY demo ./demo
EXPOSE 4001 4002
CMD ["node", "demo/partner-idp.ts", "acme", "4001"]

# --- production (the default target) ------------------------------------------------------------
FROM app AS runtime
# 3000: public (OIDC, login pages, /healthz, /readyz). 9090: admin API and /metrics, bound to
# 127.0.0.1 unless CONCORD_ADMIN_HOST says otherwise; never publish it to the internet.
EXPOSE 3000 9090
# Ready = the store answers and signing keys are loaded; /readyz turns 503 while draining on SIGTERM.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.CONCORD_PORT || 3000}/readyz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM: readiness off, drain (shutdown.drainDelayMs, default 5 s), finish requests, exit.
STOPSIGNAL SIGTERM
CMD ["node", "src/main.ts"]
