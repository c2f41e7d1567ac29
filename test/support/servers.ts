// Stops and restarts one server of the stack the test runner started, for outage tests.
import { readState, stackPaths } from '../../infra/config';
import { readPid, stopPid } from '../../infra/processes';
import { up } from '../../infra/stack';
import { stackHome } from './stack';

export type ServerName = 'temporal' | 's3';

/** Stops one server of the runner's stack (by its recorded PID); resolves once it has exited. */
export async function stopServer(name: ServerName): Promise<void> {
  const paths = stackPaths(stackHome());
  const pid = readPid(name === 'temporal' ? paths.temporalPid : paths.weedPid);
  if (pid === undefined) throw new Error(`no PID file for ${name} under ${paths.run}`);
  await stopPid(pid, 10_000);
}

/**
 * Starts whatever server of the runner's stack is down, on the same ports and data folder (the SQLite file and
 * the S3 data survive), tied to the `node --test` process so nothing outlives the test run.
 */
export async function restartStack(): Promise<void> {
  const env = { ...process.env };
  // Those name the runner's servers as external ones; here the launcher must (re)start them.
  delete env.TEMPORAL_ADDRESS;
  delete env.S3_ENDPOINT;
  // A restarted server keeps the ports the runner gave it: its clients (workers, this test) still dial them.
  const ports = readState(stackPaths(stackHome()))?.ports;
  await up({ home: stackHome(), env, ports, tieToPid: process.ppid, install: false });
}
