#!/bin/sh
# Build the project's images on this machine: ring-balancer:latest (Dockerfile) and
# ring-balancer-replica:latest (replica/Dockerfile), from the local stand-in base image
# (scripts/docker-base-image.sh, built first if missing) because no registry can be reached.
# Builds use --network host so `npm ci` uses the machine's own route to the npm registry
# (Docker's default build network often has no DNS), and --force-rm so a failed or
# interrupted build leaves no intermediate container behind.
#
# Usage: scripts/docker-build-images.sh [all|balancer|replica]   (default all)
# Env: NODE_IMAGE  base image to build FROM (default: the stand-in, ring-balancer/node-standin:20;
#                  set NODE_IMAGE=node:20-bookworm-slim where the registry is reachable)
#      BALANCER_IMAGE / REPLICA_IMAGE  tags (default ring-balancer:latest / ring-balancer-replica:latest)
set -eu

what=${1:-all}
case "$what" in all|balancer|replica) ;; *) echo "usage: $0 [all|balancer|replica]" >&2; exit 2 ;; esac

cd "$(dirname "$0")/.."
standin=ring-balancer/node-standin:20
node_image=${NODE_IMAGE:-$standin}
balancer_image=${BALANCER_IMAGE:-ring-balancer:latest}
replica_image=${REPLICA_IMAGE:-ring-balancer-replica:latest}

log() { echo "docker-build-images: $*" >&2; }

docker info >/dev/null 2>&1 || { log "ERROR: the Docker engine does not answer; run scripts/docker-up.sh first"; exit 1; }
if [ "$node_image" = "$standin" ]; then
  scripts/docker-base-image.sh "$standin"
fi

if [ "$what" = all ] || [ "$what" = replica ]; then
  log "building $replica_image FROM $node_image"
  docker build --network host --force-rm --build-arg NODE_IMAGE="$node_image" -f replica/Dockerfile -t "$replica_image" .
fi
if [ "$what" = all ] || [ "$what" = balancer ]; then
  log "building $balancer_image FROM $node_image"
  docker build --network host --force-rm --build-arg NODE_IMAGE="$node_image" -f Dockerfile -t "$balancer_image" .
fi
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E '^ring-balancer' >&2 || true
