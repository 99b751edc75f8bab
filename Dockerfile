# The load balancer as a container image. Build from the repository root:
#   docker build -t ring-balancer:latest .
# NODE_IMAGE lets machines that cannot pull node:20 use a local stand-in
# (scripts/docker-base-image.sh; scripts/docker-build-images.sh passes it).
ARG NODE_IMAGE=node:20-bookworm-slim

# Build stage. /src/app/node_modules gets the production dependencies only (dockerode's
# tree; the final stage copies it as is). The compiler and type packages, at the lockfile's
# versions, go one directory up in /src/node_modules, where module and @types resolution
# still find them: the test tools (tap and its tree; the benchmark tools are not in this
# package.json at all, see bench/package.json) are never installed, which keeps the build
# fast, above all on slow storage drivers.
# These first steps match replica/Dockerfile, so the two builds share their layers.
FROM ${NODE_IMAGE} AS build
WORKDIR /src/app
COPY package.json package-lock.json ./
# A build that cannot reach the registry fails within a minute, saying why, instead of npm's
# silent retries for many minutes: first the registry's name must resolve within 15 s (on a
# build network without working DNS every lookup hangs, and npm's timeouts do not cover
# lookups), then npm gets 20 s per request and one retry.
ENV npm_config_fetch_timeout=20000 npm_config_fetch_retries=1 \
    npm_config_fetch_retry_mintimeout=2000 npm_config_fetch_retry_maxtimeout=5000
RUN node -e 'const host = new URL(process.env.npm_config_registry || "https://registry.npmjs.org/").hostname; \
      const fail = (why) => { console.error(`ERROR: the build cannot reach the npm registry: ${host} ${why}.`); process.exit(1) }; \
      setTimeout(() => fail("did not resolve within 15 s"), 15000).unref(); \
      require("node:dns").lookup(host, (err) => err && fail(`does not resolve (${err.code})`))' \
 && { npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && cd /src && npm install --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
      $(node -p 'const p = require("./app/package-lock.json").packages; ["typescript", "@types/node", "@types/dockerode"].map((n) => `${n}@${p["node_modules/" + n].version}`).join(" ")'); } \
 || { echo "ERROR: npm could not download the build's packages from the registry (see above)." \
      "Docker's default build network often has no DNS: build with host networking," \
      "scripts/docker-build-images.sh or docker-compose build (docker-compose.yml sets build.network: host)." >&2; exit 1; }
COPY tsconfig.json ./
COPY replica ./replica
COPY src ./src
RUN ../node_modules/.bin/tsc -p tsconfig.json

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY package.json ./
# dockerode and its tree, installed without install scripts: its optional native helpers
# (ssh2's crypto binding, cpu-features) are not needed to talk to a local socket.
COPY --from=build /src/app/node_modules ./node_modules
COPY --from=build /src/app/dist/src ./dist/src
# The replica too, so `--provider process` also works inside this image.
COPY --from=build /src/app/dist/replica ./dist/replica
# Non-root by default (uid/gid 1000 `node`, present in the official images and the stand-in).
# Trade-off with `--provider docker`: the balancer talks to /var/run/docker.sock, which is
# usually root:docker mode 660 with a host-specific docker gid. Either add that gid to the
# container (`docker run --group-add "$(stat -c %g /var/run/docker.sock)"`, compose
# `group_add`) and stay uid 1000, or run as root (`--user root`, what docker-compose.yml does
# by default because the gid differs from host to host). Access to the Docker socket is
# root-equivalent on the host either way, so non-root here limits mistakes, not attackers.
USER node
EXPOSE 5000 5050
ENTRYPOINT ["node", "dist/src/main.js"]
