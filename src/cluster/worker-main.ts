/** Entry of a data-plane worker process: node:cluster forks it from the primary (primary.ts). */
import { runWorker } from './worker.js'

runWorker()
