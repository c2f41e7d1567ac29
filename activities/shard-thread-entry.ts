/** The thread of one evaluation shard (started by activities/shard-thread.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend } from '../tensor/backend';
import { loadModelFromBytes } from '../tensor/models/io';
import { runPhases } from './evaluate-phases';
import type { FromShardThread, ShardThreadInit } from './shard-thread';

const init = workerData as ShardThreadInit;
const post = (m: FromShardThread) => parentPort!.postMessage(m);

try {
  await initBackend(init.backend, { log: () => {} });
  const model = await loadModelFromBytes(init.model);
  try {
    const done = await runPhases(model, init.test, init.spec, init.range, init.start, {
      report: (beat) => post({ type: 'beat', beat }),
    });
    post({ type: 'done', done });
  } finally {
    model.dispose();
  }
} catch (err) {
  const e = err instanceof Error ? err : new Error(String(err));
  post({ type: 'error', name: e.name, message: e.message });
}
