/**
 * The Swarm service that runs one replica. One task (replicated mode, 1 replica), restart
 * condition `none` (a replica that dies stays dead: the balancer replaces it with a new name,
 * as with the other providers), attached to the overlay network under its service name and
 * hostname, and no virtual IP (`dnsrr`): the balancer routes to each task's own address,
 * because Swarm's VIP would balance again behind the ring and break key affinity.
 * Reached from a host, the replica's port is published in host mode on the task's node (the
 * ingress routing mesh would be a VIP again, and needs iptables besides).
 */
import type Docker from 'dockerode'
import { LABELS, REPLICA_PORT, networkAliases } from '../docker/names.js'

/** Label on the task containers: the die-event filter finds an owner's containers by it. */
export const TASK_OWNER_LABEL = 'ring-balancer.swarm-owner'
/** Label on each service: the balancer that created it (what a follower names in its refusals). */
export const WRITER_LABEL = 'ring-balancer.writer'
/** Label on each service: the replica's weight on the ring, so followers (and a restarted writer) use the same. */
export const WEIGHT_LABEL = 'ring-balancer.weight'

export interface ReplicaServiceOptions {
  /** Service name (`rb-server-1-1b2077a3`, from containerName). */
  service: string
  /** The replica's hostname (`Server 1`). */
  hostname: string
  owner: string
  writer: string
  weight: number
  image: string
  network: string
  /** Publish the replica's port in host mode (a balancer on a host reaches it there). */
  publish: boolean
}

export function replicaServiceSpec(o: ReplicaServiceOptions): Docker.CreateServiceOptions {
  return {
    Name: o.service,
    Labels: { [LABELS.owner]: o.owner, [LABELS.hostname]: o.hostname, [LABELS.port]: String(REPLICA_PORT), [WRITER_LABEL]: o.writer, [WEIGHT_LABEL]: String(o.weight) },
    TaskTemplate: {
      ContainerSpec: {
        Image: o.image,
        Env: [`SERVER_ID=${o.hostname}`, `PORT=${REPLICA_PORT}`],
        Labels: { [TASK_OWNER_LABEL]: o.owner, [LABELS.hostname]: o.hostname },
        Hostname: o.service,
        // The replica exits at once on SIGTERM; the balancer has drained it before.
        StopGracePeriod: 5_000_000_000,
      },
      RestartPolicy: { Condition: 'none' },
      Networks: [{ Target: o.network, Aliases: networkAliases(o.service, o.hostname) }],
    },
    Mode: { Replicated: { Replicas: 1 } },
    EndpointSpec: {
      Mode: 'dnsrr',
      ...(o.publish ? { Ports: [{ Protocol: 'tcp', TargetPort: REPLICA_PORT, PublishMode: 'host' }] } : {}),
    },
  } as Docker.CreateServiceOptions
}
