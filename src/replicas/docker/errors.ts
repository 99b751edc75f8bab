/**
 * Docker failures as errors that say what to do: DockerProviderError carries a stable `code`
 * (no engine, missing image, name conflict, ...) and a message with the next step; the engine's
 * own HTTP status and message are read from dockerode's errors here.
 */
import type Docker from 'dockerode'

export type DockerErrorCode =
  | 'ENGINE_UNREACHABLE'
  | 'ENGINE_ERROR'
  | 'IMAGE_MISSING'
  | 'BAD_NETWORK'
  | 'NAME_CONFLICT'
  | 'ALREADY_RUNNING'
  | 'NOT_INITIALIZED'
  | 'START_FAILED'
  | 'CLOSED'
  | 'NOT_SWARM_MANAGER'
  | 'FOLLOWER'

export class DockerProviderError extends Error {
  override name = 'DockerProviderError'
  constructor(
    readonly code: DockerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/** A host-networked replica lost its port to someone else between our probe and its bind (retried). */
export class PortTaken extends Error {}

const UNREACHABLE = ['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH']

/** An engine failure as an error that says what to do (a DockerProviderError passes through). */
export function engineError(docker: Docker, err: unknown, doing?: string): DockerProviderError {
  if (err instanceof DockerProviderError) return err
  const e = err as NodeJS.ErrnoException
  const where = engineAddress(docker)
  if (e?.code === 'EACCES') {
    return new DockerProviderError(
      'ENGINE_UNREACHABLE',
      `permission denied on the Docker engine at ${where}: run the balancer as root or as a member of the socket's group (see the Dockerfile), or use --provider process`,
      { cause: err },
    )
  }
  if (e && typeof e.code === 'string' && UNREACHABLE.includes(e.code)) {
    return new DockerProviderError(
      'ENGINE_UNREACHABLE',
      `cannot reach the Docker engine at ${where} (${e.code}): start Docker (scripts/docker-up.sh), or when the balancer runs in a container mount the socket (-v /var/run/docker.sock:/var/run/docker.sock), or use --provider process`,
      { cause: err },
    )
  }
  return new DockerProviderError('ENGINE_ERROR', `Docker engine error${doing ? ` while ${doing}` : ''}: ${engineMessage(err)}`, { cause: err })
}

export function imageMissing(image: string, cause: unknown): DockerProviderError {
  return new DockerProviderError(
    'IMAGE_MISSING',
    `replica image ${image} not found on the Docker engine: build it with scripts/docker-build-images.sh replica (or: docker build -f replica/Dockerfile -t ${image} .), or run docker compose build`,
    { cause },
  )
}

export function nameConflict(cname: string, cause: unknown, kind: 'container' | 'service' = 'container'): DockerProviderError {
  const remove = kind === 'service' ? `docker service rm ${cname}` : `docker rm -f ${cname}`
  return new DockerProviderError(
    'NAME_CONFLICT',
    `${kind} name ${cname} is already in use by another ${kind} (not one this provider runs); remove it (${remove}) or use another hostname`,
    { cause },
  )
}

/** The engine's HTTP status of a failed call (404 no such thing, 409 conflict, 304 no change). */
export function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number } | undefined)?.statusCode
}

/** The engine's own message (`{"message": ...}` body) when there is one. */
export function engineMessage(err: unknown): string {
  const e = err as { json?: { message?: string }; message?: string } | undefined
  return e?.json?.message ?? e?.message ?? String(err)
}

function engineAddress(docker: Docker): string {
  const modem = docker.modem as { socketPath?: string; host?: string; port?: number | string; protocol?: string }
  if (modem.socketPath) return `unix://${modem.socketPath}`
  return `${modem.protocol ?? 'http'}://${modem.host ?? '?'}:${modem.port ?? '?'}`
}
