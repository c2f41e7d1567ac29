import * as tf from '@tensorflow/tfjs';
import { attack } from '../attacks';
import { crossEntropy } from '../losses';
import { logitsFunction } from '../models/logits';
import { Rng } from '../random';
import { betaOf, recipeOf, stepFractionOf } from './config';
import type { TrainingConfig } from './config';
import { martLoss } from './mart';
import { pgdStepSize } from './schedules';
import { meanKl, tradesAdversary } from './trades';

/** What one batch (or one shard of it) is trained under, besides the config. */
export interface RecipeStep {
  /** ε of this batch (0: clean training). */
  eps: number;
  /** The seed of this batch's (or shard's) attack noise. */
  seed: number;
  /** How many of the leading examples stay clean (the batch is a random draw, so the first ones do). */
  clean: number;
}

/**
 * The recipe's loss on (x, y) and its gradients wrt `vars`: crafts the adversarial part against the current
 * weights in inference mode (PGD, FGSM-RS or the TRADES adversary), then differentiates the recipe's loss (CE on
 * the adversarial batch, TRADES or MART) with the model in training mode, which moves its batch-norm statistics.
 * Every other tensor is disposed; `x` and `y` stay the caller's. The one definition of a training step's maths,
 * on the main thread and in a data-parallel worker alike.
 */
export function recipeLossAndGrads(
  model: tf.LayersModel,
  vars: tf.Variable[],
  x: tf.Tensor4D,
  y: tf.Tensor1D,
  c: TrainingConfig,
  step: RecipeStep,
): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const recipe = recipeOf(c);
  const { eps } = step;
  const n = x.shape[0];
  const clean = Math.min(step.clean, n);
  let adv: tf.Tensor4D | undefined;
  try {
    if (eps > 0 && clean < n) {
      const head = clean > 0 ? x.slice([0, 0, 0, 0], [clean, -1, -1, -1]) : undefined;
      const tail = clean > 0 ? x.slice([clean, 0, 0, 0], [n - clean, -1, -1, -1]) : x;
      const tailY = clean > 0 ? y.slice([clean], [n - clean]) : y;
      const stepSize = pgdStepSize(eps, stepFractionOf(c));
      let crafted: tf.Tensor4D;
      try {
        const attackSeed = Rng.fromSeed(step.seed).seed();
        // tidy: only the crafted batch survives, whatever the attack leaves behind
        crafted = tf.tidy(() => {
          if (recipe === 'trades') {
            return tradesAdversary(model, tail, {
              norm: c.attack.norm,
              eps,
              stepSize,
              steps: c.attack.steps,
              seed: attackSeed,
            });
          }
          if (recipe === 'fgsm-rs') {
            // one signed-gradient step from a uniform start in the ε-ball, projected back into it
            return attack(model, tail, tailY, {
              method: 'fgsm',
              norm: c.attack.norm,
              eps,
              stepSize,
              randomStart: c.attack.randomStart,
              seed: attackSeed,
            });
          }
          return attack(model, tail, tailY, {
            method: 'pgd',
            norm: c.attack.norm,
            eps,
            stepSize,
            steps: c.attack.steps,
            restarts: c.attack.restarts,
            randomStart: c.attack.randomStart,
            seed: attackSeed,
          });
        });
      } finally {
        if (head) tf.dispose([tail, tailY]);
      }
      if (head) {
        adv = tf.concat([head, crafted]);
        tf.dispose([head, crafted]);
      } else {
        adv = crafted;
      }
    }
    const input = adv ?? x;
    // Scores before a final softmax, so a model brought with one (e.g. from Keras) trains on the same loss.
    const forward = logitsFunction(model, { training: true });
    return tf.variableGrads(() => {
      if (recipe === 'trades') {
        const cleanLogits = forward(x);
        const ce = crossEntropy(cleanLogits, y, c.labelSmoothing);
        if (!adv) return ce;
        return tf.add(ce, tf.mul(meanKl(cleanLogits, forward(adv)), betaOf(c))) as tf.Scalar;
      }
      if (recipe === 'mart' && adv) {
        return martLoss(forward(x), forward(adv), y, betaOf(c), c.labelSmoothing);
      }
      return crossEntropy(forward(input), y, c.labelSmoothing);
    }, vars);
  } finally {
    adv?.dispose();
  }
}
