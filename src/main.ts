#!/usr/bin/env node
/**
 * The command line: `node dist/src/main.js [flags]` (or `npm start -- [flags]`).
 * Parses flags and environment into a frozen config, starts the balancer and its replicas,
 * and on SIGINT/SIGTERM drains and stops every replica before exiting.
 */
import { ConfigError, buildConfig, helpText, parseArgs } from './config.js'
import { startApp, type App } from './app.js'
import { startCluster, type ClusterApp } from './cluster/primary.js'

async function main(): Promise<void> {
  let config
  try {
    const args = parseArgs(process.argv.slice(2), process.env)
    if (args.help) {
      console.log(helpText())
      return
    }
    config = buildConfig(args.values, args.fromEnv)
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`error: ${err.message}`)
      process.exitCode = 2
      return
    }
    throw err
  }

  // Signals are handled from the start: one that arrives while replicas are still starting
  // stops the balancer as soon as it is up, so nothing it started is left behind.
  // A second signal exits at once, but not one that arrives within REPEAT_MS of the first:
  // Ctrl-C under `npm start` reaches the balancer twice, from the terminal (the whole
  // foreground process group) and forwarded by npm, a few ms apart.
  const REPEAT_MS = 500
  let app: App | ClusterApp | undefined
  let stopping: string | undefined
  let stoppedAt = 0
  const stop = (signal: string): void => {
    if (stopping) {
      if (Date.now() - stoppedAt < REPEAT_MS) return
      console.error(`${signal} again: exiting now`)
      process.exit(1)
    }
    stopping = signal
    stoppedAt = Date.now()
    console.log(`${signal}: draining and stopping replicas...`)
    if (app) finish(app)
  }
  const finish = (started: App | ClusterApp): void => {
    started.close().then(
      () => {
        console.log('stopped')
        process.exit(0)
      },
      (err: Error) => {
        console.error(`error while stopping: ${err.message}`)
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))

  try {
    // --workers N > 1: this process becomes the primary and forks N data-plane workers.
    app = config.workers > 1 ? await startCluster(config) : await startApp(config)
  } catch (err) {
    console.error(`error: could not start the balancer: ${(err as Error).message}`)
    process.exit(1)
  }
  if (stopping) return finish(app)
  const { N, replicas } = app.balancer.membership()
  const workers = 'coordinator' in app ? ` and ${config.workers} workers (pids ${app.coordinator.pids().join(', ')})` : ''
  console.log(`ring-balancer listening on ${app.url} with ${N} replicas: ${replicas.join(', ')}${workers}`)
  for (const l of app.listeners) console.log(`  ${l.name.padEnd(9)} ${l.address}`)
  console.log(`try: curl ${app.url}/home`)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
