/**
 * npx tsx scripts/recipe-step-cost.ts [--batches 10] [recipe …]
 *
 * The cost of one training batch (128 images, reference CNN, Fashion-MNIST, constant ε = 0.1) under each recipe's
 * reference settings (`referenceConfig`), measured interleaved batch by batch in one process, so a busy machine
 * slows every recipe alike. Prints one JSON line: seconds per batch per recipe and each recipe's ratio to pgd.
 */
import { performance } from 'node:perf_hooks';
import { initBackend } from '../tensor/backend';
import { FASHION_MNIST_DIR, loadFashionMnist, subset } from '../tensor/data';
import { buildReferenceCnn } from '../tensor/models';
import { Recipe } from '../tensor/training/config';
import { referenceConfig } from '../tensor/training/reference';
import { Trainer } from '../tensor/training/trainer';

async function main(argv: string[]): Promise<void> {
  const at = argv.indexOf('--batches');
  const batches = at >= 0 ? Number(argv[at + 1]) : 10;
  const rest = argv.filter((_, i) => i !== at && i !== at + 1);
  const recipes = (rest.length ? rest : ['pgd', 'fgsm-rs']).map((r) => Recipe.parse(r));
  await initBackend('wasm', { log: () => {} });
  const data = subset(await loadFashionMnist(FASHION_MNIST_DIR, 'train'), {
    strategy: 'first',
    n: 128 * (batches + 1),
  });
  const models = recipes.map(() => buildReferenceCnn({ seed: 0 }));
  const trainers = await Promise.all(
    recipes.map(async (recipe, i) => {
      const config = referenceConfig({ mode: 'adversarial', recipe, epochs: 1, eps: 0.1, batchSize: 128, seed: 0 });
      config.epsilon = { max: 0.1 }; // constant ε: every batch runs its attack
      return Trainer.create({ model: models[i], train: data, config });
    }),
  );
  const seconds = recipes.map(() => 0);
  for (let b = 0; b <= batches; b++) {
    for (const [i, t] of trainers.entries()) {
      const t0 = performance.now();
      await t.step();
      if (b > 0) seconds[i] += (performance.now() - t0) / 1000; // batch 0 warms the kernels up
    }
  }
  const perBatch = Object.fromEntries(recipes.map((r, i) => [r, seconds[i] / batches]));
  const pgd = recipes.indexOf('pgd');
  const ratio = pgd >= 0 ? Object.fromEntries(recipes.map((r, i) => [r, seconds[i] / seconds[pgd]])) : undefined;
  process.stdout.write(
    `${JSON.stringify({ batches, secondsPerBatch: perBatch, ...(ratio ? { ratioToPgd: ratio } : {}) })}\n`,
  );
  for (const t of trainers) t.dispose();
  for (const m of models) m.dispose();
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
