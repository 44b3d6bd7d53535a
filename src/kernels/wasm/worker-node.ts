/** Node entry of a pool worker (worker_threads); loaded only by node.ts. */
import { parentPort, workerData } from 'node:worker_threads';
import type { WorkerInit } from './platform.js';
import { prepareWorker } from './worker-core.js';

const loop = prepareWorker(workerData as WorkerInit);
parentPort?.postMessage('ready');
loop();
