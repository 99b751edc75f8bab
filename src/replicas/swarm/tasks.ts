/**
 * Swarm tasks as the provider reads them: which task of a service is the live one, and the
 * address the balancer reaches it at. Swarm answers with plain JSON (dockerode types tasks as
 * `any`), so only the fields used here are declared, and every one is read defensively.
 */

/** The fields of a Swarm task (GET /tasks) this provider reads. */
export interface SwarmTask {
  ID: string
  ServiceID: string
  NodeID?: string
  CreatedAt?: string
  DesiredState?: string
  Status?: {
    State?: string
    Err?: string
    ContainerStatus?: { ContainerID?: string }
    PortStatus?: { Ports?: Array<{ TargetPort?: number; PublishedPort?: number; PublishMode?: string }> }
  }
  NetworksAttachments?: Array<{ Network?: { ID?: string; Spec?: { Name?: string } }; Addresses?: string[] }>
}

/** States a task never leaves (swarmkit's TaskState order: everything from `complete` on). */
const TERMINAL = new Set(['complete', 'shutdown', 'failed', 'rejected', 'remove', 'orphaned'])

export function isTerminal(task: SwarmTask): boolean {
  return TERMINAL.has(task.Status?.State ?? '')
}

/**
 * Desired states of a task Swarm means to run: `running`, or `ready` for the replacement task
 * of an update or a reschedule while the old one stops (it becomes `running` after).
 */
const WANTED = new Set(['ready', 'running'])

/**
 * The service's live task: the newest one Swarm means to run that has not ended. Undefined
 * when there is none, which for a one-task service with restart condition `none` means the
 * replica is gone for good (its task failed, completed or was shut down).
 */
export function liveTask(tasks: readonly SwarmTask[], serviceId: string): SwarmTask | undefined {
  let live: SwarmTask | undefined
  for (const task of tasks) {
    if (task.ServiceID !== serviceId || !WANTED.has(task.DesiredState ?? '') || isTerminal(task)) continue
    if (!live || (task.CreatedAt ?? '') > (live.CreatedAt ?? '')) live = task
  }
  return live
}

export function isRunning(task: SwarmTask): boolean {
  return task.Status?.State === 'running'
}

/** The task's address on the overlay network `network` (id or name), without the prefix length. */
export function overlayAddress(task: SwarmTask, network: { id: string; name: string }): string | undefined {
  for (const attachment of task.NetworksAttachments ?? []) {
    const net = attachment.Network
    if (net?.ID !== network.id && net?.Spec?.Name !== network.name) continue
    const cidr = attachment.Addresses?.[0]
    if (cidr) return cidr.split('/')[0]
  }
  return undefined
}

/** The host port a host-mode published `targetPort` got on the task's node. */
export function publishedPort(task: SwarmTask, targetPort: number): number | undefined {
  for (const port of task.Status?.PortStatus?.Ports ?? []) {
    if (port.TargetPort === targetPort && port.PublishMode === 'host' && port.PublishedPort) return port.PublishedPort
  }
  return undefined
}

/** Why a task ended, as Swarm reports it (`task: non-zero exit (137)`, `No such image: ...`). */
export function taskError(task: SwarmTask): string {
  const state = task.Status?.State ?? 'unknown'
  return task.Status?.Err ? `task ${state}: ${task.Status.Err}` : `task ${state}`
}
