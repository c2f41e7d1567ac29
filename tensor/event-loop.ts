/**
 * Tensor reads resolve as microtasks on tfjs-node and on wasm, so a loop of tensor work (an attack's iterations, a
 * training epoch) never lets the event loop run: no timer fires (an activity's liveness heartbeat), no cancellation
 * arrives, and no socket event is handled (a store's notice that it closed an idle connection, so the next write
 * fails with EPIPE). Long loops call the function this returns between steps.
 */
export function eventLoopYielder(everyMs = 100): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last < everyMs) return;
    await new Promise((resolve) => setImmediate(resolve));
    last = performance.now();
  };
}
