# The load balancer as a container image. Build from the repository root:
#   docker build -t ring-balancer:latest .
# NODE_IMAGE lets machines that cannot pull node:20 use a local stand-in
# (scripts/docker-base-image.sh; scripts/docker-build-images.sh passes it).
ARG NODE_IMAGE=node:20-bookworm-slim

# Build stage: all dependencies (TypeScript and types), then compile src/ and replica/.
# Its first steps match replica/Dockerfile, so the npm ci layer is shared between the two.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY replica ./replica
COPY src ./src
RUN npx tsc -p tsconfig.json

# Production dependencies only (dockerode and its tree). No install scripts: dockerode's
# optional native helpers (ssh2's crypto binding, cpu-features) are not needed for a local socket.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
# The replica too, so `--provider process` also works inside this image.
COPY --from=build /app/dist/replica ./dist/replica
# Non-root by default (uid/gid 1000 `node`, present in the official images and the stand-in).
# Trade-off with `--provider docker`: the balancer talks to /var/run/docker.sock, which is
# usually root:docker mode 660 with a host-specific docker gid. Either add that gid to the
# container (`docker run --group-add "$(stat -c %g /var/run/docker.sock)"`, compose
# `group_add`) and stay uid 1000, or run as root (`--user root`, what docker-compose.yml does
# by default because the gid differs from host to host). Access to the Docker socket is
# root-equivalent on the host either way, so non-root here limits mistakes, not attackers.
USER node
EXPOSE 5000
ENTRYPOINT ["node", "dist/src/main.js"]
