/** Reaching a replica from the balancer: the heartbeat probe that says why it failed, and free loopback ports. */
export { heartbeatReason as probeHeartbeat } from '../heartbeat.js'
export { freeLoopbackPort } from '../free-port.js'
