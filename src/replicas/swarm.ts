/**
 * The `swarm` replica provider (dockerode, Docker Swarm mode), in src/replicas/swarm/:
 *   - provider.ts  SwarmProvider: services of one task; start, stop, adopt, follow tasks, followers
 *   - spec.ts      the service spec of one replica (restart none, dnsrr, host-mode port)
 *   - tasks.ts     a service's live task and its address (overlay, or published port)
 *   - reach.ts     overlay or host: how the balancer reaches the tasks
 * Names, labels and engine errors are the Docker provider's (src/replicas/docker/).
 * This module is the public face: what the rest of the project (and the tests) import.
 */
export { SwarmProvider, type SwarmProviderOptions } from './swarm/provider.js'
export { TASK_OWNER_LABEL, WEIGHT_LABEL, WRITER_LABEL, replicaServiceSpec } from './swarm/spec.js'
export { resolveReach, inSubnet, type SwarmReach } from './swarm/reach.js'
export { liveTask, overlayAddress, publishedPort, type SwarmTask } from './swarm/tasks.js'
