/**
 * npm run train:reference -- --mode standard|adversarial --epochs N --train-size N [--out DIR] [--from DIR] [--json]
 *   [--recipe pgd|fgsm-rs|trades|mart] [--probe N] [--eps 0.1] [--eval-size 1000] [--batch-size 128] [--seed 0]
 *   [--resume] [--backend auto|wasm|cpu|…]
 *
 * Trains the reference CNN on Fashion-MNIST with the reference recipe (see tensor/training/reference.ts), saves it
 * to DIR (tfjs layers format), and evaluates it on the first 1000 test images, clean and under PGD-20. Progress
 * goes to stderr; with --json the last stdout line is
 * {"backend","recipe","clean","robust","evalImages","attack","seconds","trainSeconds"[,"keptEpoch","overfitting"]}.
 * --recipe implies --mode adversarial (see `referenceConfig` for each recipe's published settings).
 */
import { parseReferenceArgs, runReference } from '../tensor/training/reference';

async function main(argv: string[]): Promise<void> {
  let options: ReturnType<typeof parseReferenceArgs>;
  try {
    options = parseReferenceArgs(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  const { json, ...reference } = options;
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const result = await runReference(reference, log);
  if (json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    process.stdout.write(
      `${result.recipe} on ${result.backend}: clean ${(100 * result.clean).toFixed(1)}%, ` +
        `robust ${(100 * result.robust).toFixed(1)}% (PGD-${result.attack.steps} ε=${result.attack.eps}, ` +
        `${result.evalImages} test images), ${result.seconds} s (training ${result.trainSeconds} s)\n`,
    );
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
