// Stops a local stack's servers when the process it is tied to disappears, even after a SIGKILL.
// Spawned detached by infra/stack.ts `up({ tieToPid })`; plain JavaScript so it starts fast without tsx.
// Argument: JSON { tiePid, tieStart?, servers: [{ name, pid, marker, pidFile }], groups?: [{ name, pgid }],
// watchdogPidFile? }. It kills by recorded PID only, after checking the command line still holds the stack's
// marker path; a group (e.g. a test runner's child `node --test` and its per-file processes) by process group id.
import { readFileSync, rmSync } from 'node:fs';

const config = JSON.parse(process.argv[2] ?? '{}');
const log = (line) => process.stdout.write(`${new Date().toISOString()} watchdog ${process.pid}: ${line}\n`);

function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return err.code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function startTime(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function ours(server) {
  if (!alive(server.pid)) return false;
  try {
    return readFileSync(`/proc/${server.pid}/cmdline`, 'utf8').includes(server.marker);
  } catch {
    return true;
  }
}

function groupAlive(group) {
  try {
    process.kill(-group.pgid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

const servers = config.servers ?? [];
const groups = config.groups ?? [];
const anythingLeft = () => servers.some(ours) || groups.some(groupAlive);

function signalGroup(group, signal) {
  try {
    process.kill(-group.pgid, signal);
  } catch {
    /* gone */
  }
}

function tiedAlive() {
  if (!alive(config.tiePid)) return false;
  // A recycled pid is not the process we were tied to.
  return config.tieStart === undefined || startTime(config.tiePid) === config.tieStart;
}

function removePidFile(file, pid) {
  try {
    if (Number(readFileSync(file, 'utf8').trim()) === pid) rmSync(file, { force: true });
  } catch {
    /* gone already */
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function stopAll() {
  const running = servers.filter(ours);
  const runningGroups = groups.filter(groupAlive);
  for (const g of runningGroups) {
    log(`stopping process group ${g.pgid} (${g.name})`);
    signalGroup(g, 'SIGTERM');
  }
  for (const s of running) {
    log(`stopping ${s.name} (pid ${s.pid})`);
    try {
      process.kill(s.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (running.some((s) => alive(s.pid)) || runningGroups.some(groupAlive))) {
    await sleep(100);
  }
  for (const g of runningGroups) if (groupAlive(g)) signalGroup(g, 'SIGKILL');
  for (const s of running) {
    if (alive(s.pid)) {
      log(`${s.name} (pid ${s.pid}) ignored SIGTERM, sending SIGKILL`);
      try {
        process.kill(s.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  for (const s of servers) removePidFile(s.pidFile, s.pid);
}

const watched = [...servers.map((s) => `${s.name}=${s.pid}`), ...groups.map((g) => `${g.name}=group ${g.pgid}`)];
log(`tied to pid ${config.tiePid}; watching ${watched.join(', ')}`);
for (;;) {
  if (!anythingLeft()) {
    log('everything watched is gone (stopped elsewhere); exiting');
    break;
  }
  if (!tiedAlive()) {
    log(`pid ${config.tiePid} is gone`);
    await stopAll();
    break;
  }
  await sleep(300);
}
if (config.watchdogPidFile) removePidFile(config.watchdogPidFile, process.pid);
