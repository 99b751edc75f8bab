/** Picks the replica provider the config asks for. Docker code loads only when used. */
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
  return new ProcessProvider({ startTimeoutMs: config.startTimeoutMs })
}
