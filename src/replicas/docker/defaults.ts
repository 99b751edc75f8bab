/**
 * Defaults of the Docker and Swarm providers, defined once: the providers use them and
 * config.ts shows them (kept free of dockerode, so reading the config does not load it).
 */

/** The replica image scripts/docker-build-images.sh builds. */
export const DEFAULT_IMAGE = 'ring-balancer-replica:latest'
/** The replicas' network (docker: a bridge; swarm: an attachable overlay), created if missing. */
export const DEFAULT_NETWORK = 'net1'
/** Label value marking the containers or services this balancer owns. */
export const DEFAULT_OWNER = 'ring-balancer'
