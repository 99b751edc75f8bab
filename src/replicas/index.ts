/** Picks the replica provider the config asks for. Docker and Swarm code load only when used. */
import type { Config } from '../config.js'
import type { ReplicaProvider } from './provider.js'
import { ProcessProvider } from './process.js'

export async function createProvider(config: Config): Promise<ReplicaProvider> {
  if (config.provider === 'docker') {
    const { DockerProvider } = await import('./docker.js')
    return new DockerProvider({
      image: config.image,
      network: config.network,
      owner: config.owner,
      keep: config.dockerKeep,
      startTimeoutMs: config.startTimeoutMs,
    })
  }
  if (config.provider === 'swarm') {
    const { SwarmProvider } = await import('./swarm.js')
    return new SwarmProvider({
      image: config.image,
      network: config.network,
      owner: config.owner,
      keep: config.dockerKeep,
      startTimeoutMs: config.startTimeoutMs,
      reach: config.swarmReach,
      follow: config.swarmFollow,
    })
  }
  return new ProcessProvider({ startTimeoutMs: config.startTimeoutMs })
}
