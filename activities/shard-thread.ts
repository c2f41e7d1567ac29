/**
 * An evaluation shard on a thread of its own: the heavy worker runs as many shards side by side as it has cores
 * (one thread each, with its own backend and its own copy of the model), while its main thread stays free for
 * heartbeats and cancellation. The thread runs the same `runPhases` as the main thread would, on the same images
 * and seeds, so a shard's results do not depend on where it ran.
 */
import type * as tf from '@tensorflow/tfjs';
import type { BackendName } from '../tensor/backend';
import type { LabeledImages } from '../tensor/eval/data';
import type { SuiteShardResult } from '../tensor/eval/reduce';
import { saveModelToBytes } from '../tensor/models/io';
import type { ModelFiles } from '../tensor/models/io';
import { spawnTsWorker } from '../tensor/parallel/spawn';
import type { PhasesSpec, ShardHeartbeat, ShardRange } from './evaluate-phases';

/** What the thread starts with (`workerData`). */
export interface ShardThreadInit {
  backend: BackendName;
  /** The model's files, as the object store holds them. */
  model: ModelFiles;
  /** The evaluated test images up to the shard's last one (image numbers stay the test split's). */
  test: LabeledImages;
  spec: PhasesSpec;
  range: ShardRange;
  start: ShardHeartbeat;
}

export type FromShardThread =
  | { type: 'beat'; beat: ShardHeartbeat }
  | { type: 'done'; done: SuiteShardResult[] }
  | { type: 'error'; name: string; message: string };

/** The first `count` images of `d`, copied (a view would send its whole buffer to the thread). */
function firstImages(d: LabeledImages, count: number): LabeledImages {
  const per = d.height * d.width * d.channels;
  return {
    ...(d.images ? { images: d.images.slice(0, count * per) } : {}),
    ...(!d.images && d.pixels ? { pixels: d.pixels.slice(0, count * per) } : {}),
    labels: d.labels.slice(0, count),
    count,
    height: d.height,
    width: d.width,
    channels: d.channels,
    numClasses: d.numClasses,
  };
}

/**
 * `runPhases` on a new thread running `backend`: the same arguments, the same result and reports. An aborted
 * `signal` ends the thread at once and rejects with its reason; the thread has exited when this settles.
 */
export async function runPhasesOnThread(
  model: tf.LayersModel,
  test: LabeledImages,
  spec: PhasesSpec,
  range: ShardRange,
  start: ShardHeartbeat,
  hooks: { report: (b: ShardHeartbeat) => void; signal?: AbortSignal; backend: BackendName },
): Promise<SuiteShardResult[]> {
  const { report, signal, backend } = hooks;
  signal?.throwIfAborted();
  const init: ShardThreadInit = {
    backend,
    model: await saveModelToBytes(model),
    test: firstImages(test, Math.min(test.count, range.start + range.count)),
    spec: { evaluation: spec.evaluation, attack: spec.attack, epsilon: spec.epsilon, training: spec.training },
    range,
    start,
  };
  const worker = spawnTsWorker(new URL('./shard-thread-entry.ts', import.meta.url), init);
  let onAbort: (() => void) | undefined;
  try {
    return await new Promise<SuiteShardResult[]>((resolve, reject) => {
      onAbort = () => reject(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      worker.on('message', (m: FromShardThread) => {
        if (m.type === 'beat') report(m.beat);
        else if (m.type === 'done') resolve(m.done);
        else reject(Object.assign(new Error(m.message), { name: m.name }));
      });
      worker.on('error', (err) => reject(new Error(`evaluation thread failed: ${err.message}`)));
      worker.on('exit', (code) => reject(new Error(`evaluation thread exited (code ${code}) before it finished`)));
    });
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    await worker.terminate();
  }
}
