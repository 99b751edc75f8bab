import t from 'tap'
import { isTerminal, liveTask, overlayAddress, publishedPort, taskError, type SwarmTask } from '../../../src/replicas/swarm/tasks.js'

// Shapes as the engine answered them on a single-node swarm (docker 20.10), trimmed.
const running: SwarmTask = {
  ID: 'old',
  ServiceID: 's1',
  NodeID: 'n1',
  CreatedAt: '2026-12-02T12:16:32.4Z',
  DesiredState: 'running',
  Status: {
    State: 'running',
    ContainerStatus: { ContainerID: 'c1' },
    PortStatus: { Ports: [{ TargetPort: 5000, PublishedPort: 32768, PublishMode: 'host' }, { TargetPort: 5000, PublishedPort: 32768, PublishMode: 'host' }] },
  },
  NetworksAttachments: [
    { Network: { ID: 'ingress-id', Spec: { Name: 'ingress' } }, Addresses: ['10.0.0.5/24'] },
    { Network: { ID: 'p20u', Spec: { Name: 'rb-net' } }, Addresses: ['10.0.1.2/24'] },
  ],
}

t.test('liveTask: the newest task Swarm means to run that has not ended', async (t) => {
  t.equal(liveTask([running], 's1'), running)
  t.equal(liveTask([running], 's2'), undefined, 'another service')
  const failed: SwarmTask = { ...running, ID: 'dead', DesiredState: 'shutdown', Status: { State: 'failed', Err: 'task: non-zero exit (137)' } }
  t.equal(liveTask([failed], 's1'), undefined, 'a killed task with restart none: gone')
  // During an update (or a reschedule) the old task is told to shut down and the new one
  // waits as `ready` until it has: still one live task, never none.
  const stopping: SwarmTask = { ...running, DesiredState: 'shutdown' }
  const next: SwarmTask = { ...running, ID: 'new', CreatedAt: '2026-12-02T12:33:59.6Z', DesiredState: 'ready', Status: { State: 'preparing' } }
  t.equal(liveTask([stopping, next], 's1'), next)
  const later: SwarmTask = { ...next, DesiredState: 'running', Status: { State: 'running' } }
  t.equal(liveTask([later, failed, running], 's1'), later, 'the newest wins')
  t.equal(liveTask([{ ...running, DesiredState: 'running', Status: { State: 'rejected', Err: 'No such image: x' } }], 's1'), undefined)
  t.equal(liveTask([{ ID: 'bare', ServiceID: 's1' }], 's1'), undefined, 'missing fields: not live')
})

t.test('addresses: overlay by network id or name; host-mode published port', async (t) => {
  t.equal(overlayAddress(running, { id: 'p20u', name: 'x' }), '10.0.1.2')
  t.equal(overlayAddress(running, { id: 'x', name: 'rb-net' }), '10.0.1.2')
  t.equal(overlayAddress(running, { id: 'x', name: 'y' }), undefined)
  t.equal(overlayAddress({ ID: 'a', ServiceID: 's1' }, { id: 'p20u', name: 'rb-net' }), undefined)
  t.equal(publishedPort(running, 5000), 32768)
  t.equal(publishedPort(running, 80), undefined)
  t.equal(publishedPort({ ...running, Status: { PortStatus: { Ports: [{ TargetPort: 5000, PublishedPort: 30000, PublishMode: 'ingress' }] } } }, 5000), undefined, 'ingress ports are a VIP: never used')
  t.equal(publishedPort({ ID: 'a', ServiceID: 's1' }, 5000), undefined)
})

t.test('terminal states and the reason', async (t) => {
  for (const state of ['complete', 'shutdown', 'failed', 'rejected', 'orphaned', 'remove']) t.ok(isTerminal({ ID: 'a', ServiceID: 's', Status: { State: state } }), state)
  for (const state of ['new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting', 'running']) t.notOk(isTerminal({ ID: 'a', ServiceID: 's', Status: { State: state } }), state)
  t.equal(taskError({ ID: 'a', ServiceID: 's', Status: { State: 'rejected', Err: 'No such image: x' } }), 'task rejected: No such image: x')
  t.equal(taskError({ ID: 'a', ServiceID: 's' }), 'task unknown')
})
