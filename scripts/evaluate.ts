/**
 * npm run evaluate -- --model DIR --suite standard|plus|fast --eps 0.1 --images N [--json] [--norm linf|l2]
 *   [--dataset PATH] [--dataset-format idx|cifar10-binary] [--batch-size 100] [--seed 0] [--no-sanity] [--backend …]
 *
 * Evaluates a saved tfjs layers model on the first N test images under an attack suite (each attack on the points
 * every earlier one left robust), then runs the sanity panel. Progress goes to stderr; with --json the last stdout
 * line is {"backend","suite","clean","worstCase","attacks":{"<name>":<accuracy after it>},"flags":[…],"images",
 * "seconds",…}. Bad flags or a missing model folder exit with status 2.
 */
import { parseEvaluateArgs, runEvaluateCommand, UsageError } from '../tensor/eval/command';

async function main(argv: string[]): Promise<void> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  try {
    const command = parseEvaluateArgs(argv);
    const { summary, result, sanity } = await runEvaluateCommand(command, log);
    if (command.json) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
      return;
    }
    const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
    const lines = [
      `${summary.suite} suite, ${summary.norm} ε=${summary.eps}, ${summary.images} images on ${summary.backend}, ${summary.seconds} s`,
      `clean ${pct(result.clean.accuracy)} [${pct(result.clean.lower)}, ${pct(result.clean.upper)}]`,
      ...result.perAttack.map(
        (a) =>
          `after ${a.name}: ${pct(a.after.accuracy)} [${pct(a.after.lower)}, ${pct(a.after.upper)}], broke ${a.broke}`,
      ),
      `worst case ${pct(result.worstCase.accuracy)} [${pct(result.worstCase.lower)}, ${pct(result.worstCase.upper)}]`,
      ...sanity.map(
        (f) =>
          `${f.fired ? 'FIRED' : 'ok   '} ${f.name}${f.evaluated ? '' : ' (not evaluated)'} ${JSON.stringify(f.numbers)}`,
      ),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
