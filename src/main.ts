#!/usr/bin/env node
/**
 * The command line: `node dist/src/main.js [flags]` (or `npm start -- [flags]`).
 * Parses flags and environment into a frozen config, starts the balancer and its replicas,
 * and on SIGINT/SIGTERM drains and stops every replica before exiting.
 */
import { ConfigError, buildConfig, helpText, parseArgs } from './config.js'
import { startApp } from './app.js'

async function main(): Promise<void> {
  let config
  try {
    const args = parseArgs(process.argv.slice(2), process.env)
    if (args.help) {
      console.log(helpText())
      return
    }
    config = buildConfig(args.values)
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`error: ${err.message}`)
      process.exitCode = 2
      return
    }
    throw err
  }

  let app
  try {
    app = await startApp(config)
  } catch (err) {
    console.error(`error: could not start the balancer: ${(err as Error).message}`)
    process.exitCode = 1
    return
  }
  const { N, replicas } = app.balancer.membership()
  console.log(`ring-balancer listening on ${app.url} with ${N} replicas: ${replicas.join(', ')}`)
  console.log(`try: curl ${app.url}/home`)
  if (app.adminUrl !== undefined) console.log(`admin API on ${app.adminUrl} (/rep, /add, /rm, /healthz)`)

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) {
      console.error(`${signal} again: exiting now`)
      process.exit(1)
    }
    stopping = true
    console.log(`${signal}: draining and stopping replicas...`)
    app.close().then(
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
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
