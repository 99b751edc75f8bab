/**
 * The `docker` replica provider (dockerode), in src/replicas/docker/:
 *   - provider.ts   DockerProvider: start, stop, adopt or clean up, keep on close, die events
 *   - names.ts      container names and the ownership labels
 *   - errors.ts     engine failures as DockerProviderError with a code and what to do
 *   - containers.ts stop/remove that tolerate a gone container, its last log lines
 *   - events.ts     the engine's die events for one owner's containers
 *   - probe.ts      heartbeat probe with the reason it failed, free loopback ports
 * This module is the public face: what the rest of the project (and the tests) import.
 */
export { DockerProvider, type DockerProviderOptions } from './docker/provider.js'
export { LABELS, REPLICA_PORT, containerName } from './docker/names.js'
export { DockerProviderError, type DockerErrorCode } from './docker/errors.js'
