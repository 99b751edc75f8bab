/**
 * The engine's `die` events for one owner's containers, as container ids: the provider's fast
 * path for noticing a replica that died (the health checker stays the authority). The stream
 * never keeps the process alive, and a new one is opened by `watch()` after it ends.
 */
import type Docker from 'dockerode'
import { LABELS } from './names.js'

export class DieEvents {
  private stream: NodeJS.ReadableStream | undefined
  private opening = false
  private closed = false

  constructor(
    private readonly docker: Docker,
    private readonly owner: string,
    private readonly onDie: (containerId: string) => void,
    /** The label whose value is the owner (the Swarm provider marks its task containers with its own). */
    private readonly ownerLabel: string = LABELS.owner,
  ) {}

  /** Subscribe, unless subscribed (or subscribing) already. */
  watch(): void {
    if (this.stream || this.opening || this.closed) return
    this.opening = true
    const filters = JSON.stringify({ type: ['container'], event: ['die'], label: [`${this.ownerLabel}=${this.owner}`] })
    let buffered = ''
    this.docker.getEvents({ filters }).then(
      (stream) => {
        this.opening = false
        if (this.closed) return destroy(stream)
        this.stream = stream
        // Do not keep the process alive just for events.
        ;(stream as unknown as { socket?: { unref?: () => void } }).socket?.unref?.()
        const ended = (): void => {
          if (this.stream === stream) this.stream = undefined
        }
        stream.on('error', ended)
        stream.on('end', ended)
        stream.on('data', (chunk: Buffer) => {
          buffered += chunk.toString('utf8')
          let nl: number
          while ((nl = buffered.indexOf('\n')) !== -1) {
            const line = buffered.slice(0, nl)
            buffered = buffered.slice(nl + 1)
            const id = idOf(line)
            if (id) this.onDie(id)
          }
        })
      },
      () => {
        this.opening = false
      },
    )
  }

  close(): void {
    this.closed = true
    if (!this.stream) return
    this.stream.removeAllListeners('data')
    destroy(this.stream)
    this.stream = undefined
  }
}

function idOf(line: string): string | undefined {
  try {
    return (JSON.parse(line) as { id?: string }).id
  } catch {
    return undefined
  }
}

function destroy(stream: NodeJS.ReadableStream): void {
  ;(stream as unknown as { destroy?: () => void }).destroy?.()
}
