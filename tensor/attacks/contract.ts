import type * as tf from '@tensorflow/tfjs';
import type { LogitsFn } from '../models/logits';
import type { Norm } from './options';

/**
 * What every attack of an evaluation suite receives. The suite runner owns `x` and `y` and passes only the
 * points still robust, so an attack never needs to know which attacks ran before it.
 */
export interface SuiteAttackContext {
  /** Forward pass to logits in inference mode (a model ending in softmax is read before the softmax). */
  logits: LogitsFn;
  /** Clean images, NHWC float32 in [0,1]. */
  x: tf.Tensor4D;
  /** True labels, int32, one per image. */
  y: tf.Tensor1D;
  norm: Norm;
  /** Radius of the threat model in pixel units. */
  eps: number;
  /** Classes the model scores (the logits' width). */
  numClasses: number;
  /** Seed of every random draw, so a resumed or retried shard repeats exactly. */
  seed: number;
  /** Checked between iterations; an aborted signal rejects with its reason. */
  signal?: AbortSignal;
  /**
   * Told between iterations how much of this call's work is done (0 to 1), and awaited: progress reports, and a
   * chance for the caller to let the event loop run (timers, heartbeats, sockets) during a long batch, since
   * tensor reads on a native backend resolve without ever yielding to it. Never affects the result.
   */
  onProgress?: (done: number) => void | Promise<void>;
}

/**
 * One attack of a suite: returns adversarial images (the caller owns and disposes them), each inside the ε-ball
 * around its clean image and inside [0,1]. Points it cannot break come back as its best attempt (or unchanged).
 * Asynchronous so long attacks can await their numbers between iterations (heartbeats and cancellation get through).
 * Leaves no other tensor behind.
 */
export type SuiteAttackFn = (ctx: SuiteAttackContext) => Promise<tf.Tensor4D>;
