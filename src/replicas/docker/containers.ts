/** Operations on one container that tolerate it being gone already, and its last output. */
import type Docker from 'dockerode'
import { statusOf } from './errors.js'

/** Stop (5 s grace) and remove; a container already stopped or gone is fine. */
export async function stopAndRemove(container: Docker.Container): Promise<void> {
  try {
    await container.stop({ t: 5 })
  } catch (err) {
    // 304: already stopped; 404: already gone.
    const status = statusOf(err)
    if (status === 404) return
    if (status !== 304) throw err
  }
  try {
    await container.remove({ force: true, v: true })
  } catch (err) {
    // 404: gone; 409: removal already in progress (e.g. a concurrent clean-up).
    const status = statusOf(err)
    if (status !== 404 && status !== 409) throw err
  }
}

/** Force-remove, ignoring every error (clean-up after a failure). */
export async function removeQuietly(container: Docker.Container): Promise<void> {
  await container.remove({ force: true, v: true }).catch(() => undefined)
}

/** The container's last output (stdout and stderr demultiplexed), trimmed; '' when unavailable. */
export async function containerLogs(container: Docker.Container): Promise<string> {
  try {
    const raw = (await container.logs({ stdout: true, stderr: true, tail: 20, follow: false })) as unknown as Buffer
    const out: Buffer[] = []
    // Without a TTY the engine frames each chunk: [stream, 0, 0, 0, size (4 bytes BE)] + payload.
    const framed = raw.length >= 8 && raw[0]! <= 2 && raw[1] === 0 && raw[2] === 0 && raw[3] === 0
    let i = 0
    while (framed && i + 8 <= raw.length) {
      const size = raw.readUInt32BE(i + 4)
      out.push(raw.subarray(i + 8, i + 8 + size))
      i += 8 + size
    }
    return (i === 0 ? raw : Buffer.concat(out)).toString('utf8').trim()
  } catch {
    return ''
  }
}

/** The line of the logs worth showing: the first error, else the last line (at most 300 characters). */
export function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean)
  const error = lines.find((l) => /Error|EADDRINUSE/.test(l))
  return (error ?? lines[lines.length - 1] ?? '').slice(0, 300)
}
