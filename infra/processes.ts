import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** True when a process with this id exists (signal 0 probes without killing). */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process's command line (Linux /proc), or undefined where there is no /proc or no such process. */
export function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

/** Start time in clock ticks since boot (Linux /proc), to tell a process from a later one with the same id. */
export function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22; the command name (field 2) may hold spaces and parentheses, so count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie waiting to be reaped: a process that still holds its ports. */
export function isRunning(pid: number | undefined): boolean {
  return pid !== undefined && isAlive(pid) && !isZombie(pid);
}

/** Zombies count as gone: they hold no port and will not answer. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/**
 * True when `pid` is alive and is the process we started: its command line contains `marker` (a path unique
 * to one stack home). Without /proc, liveness alone decides.
 */
export function isOurs(pid: number | undefined, marker: string): boolean {
  if (pid === undefined || !isAlive(pid) || isZombie(pid)) return false;
  const cmd = commandLine(pid);
  return cmd === undefined ? existsSync('/proc') === false : cmd.includes(marker);
}

export function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export function writePid(file: string, pid: number): void {
  writeFileSync(file, `${pid}\n`);
}

/** Removes a PID file, but only while it still names `pid` (another `up` may have replaced it). */
export function removePidFile(file: string, pid?: number): void {
  if (pid === undefined || readPid(file) === pid) rmSync(file, { force: true });
}

/** Waits until the process is gone; false on timeout. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid) || isZombie(pid)) return true;
    await sleep(100);
  }
  return !isAlive(pid) || isZombie(pid);
}

/**
 * Stops one process by id: SIGTERM, then SIGKILL after `graceMs`. Returns the signal that ended it, or
 * undefined when it was not running.
 */
export async function stopPid(pid: number, graceMs = 10_000): Promise<'SIGTERM' | 'SIGKILL' | undefined> {
  if (!isAlive(pid)) return undefined;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return undefined;
  }
  if (await waitForExit(pid, graceMs)) return 'SIGTERM';
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
  await waitForExit(pid, 5_000);
  return 'SIGKILL';
}

/** Resolves true when nothing listens on host:port (we could bind it ourselves). */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolvePromise(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolvePromise(true)));
  });
}

/** The first port of the kernel's ephemeral range (Linux /proc), 32768 where it cannot be read. */
export function ephemeralPortStart(): number {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > 2048 ? first : 32768;
  } catch {
    return 32768;
  }
}

/**
 * `count` distinct ports free on host, drawn below the ephemeral range: a port the OS hands out for `listen(0)` is
 * also the kind it hands any outgoing connection, which can take it between our pick and the server's bind.
 */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const high = ephemeralPortStart();
  const low = Math.max(1024, high - 16_384);
  const picked = new Set<number>();
  for (let tries = 0; picked.size < count; tries++) {
    if (tries > 50 * count) throw new Error(`could not find ${count} free ports on ${host} in ${low}-${high - 1}`);
    const port = low + Math.floor(Math.random() * (high - low));
    if (!picked.has(port) && (await isPortFree(port, host))) picked.add(port);
  }
  return [...picked];
}

/**
 * A lock file holding our pid, so two `up`/`down` calls on one home do not race. A lock whose holder died
 * is taken over. Returns the release function.
 */
export async function acquireLock(file: string, timeoutMs = 120_000): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(file, 'wx');
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => removePidFile(file, process.pid);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readPid(file);
    if (holder === undefined || !isAlive(holder)) {
      rmSync(file, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`${file} is held by process ${holder} (another tempered up/down on this home): try again`);
    }
    await sleep(200);
  }
}
