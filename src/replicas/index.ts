/** Picks the replica provider the config asks for. Docker and Swarm code load only when used. */
import type { Config } from '../config.js'
import type { ReplicaProvider } from './provider.js'
import { ProcessProvider } from './process.js'

export async function createProvider(config: Config): Promise<ReplicaProvider> {
  if (config.provider === 'process') return new ProcessProvider({ startTimeoutMs: config.startTimeoutMs })
  // What the Docker and Swarm providers share (replicas/docker/engine-provider.ts).
  const engine = { image: config.image, network: config.network, owner: config.owner, keep: config.dockerKeep, startTimeoutMs: config.startTimeoutMs }
  if (config.provider === 'docker') {
    const { DockerProvider } = await import('./docker.js')
    return new DockerProvider(engine)
  }
  const { SwarmProvider } = await import('./swarm.js')
  return new SwarmProvider({ ...engine, reach: config.swarmReach, follow: config.swarmFollow })
}
