// Child process for test/integration/stack.test.ts: starts a stack tied to itself, prints its info as one JSON
// line, then waits to be killed. Usage: tsx test/support/tied-stack.ts <home> <ports-json>
import { up } from '../../infra/stack';

const [home, portsJson] = process.argv.slice(2);
if (!home || !portsJson) throw new Error('usage: tied-stack.ts <home> <ports-json>');
const info = await up({ home, ports: JSON.parse(portsJson), env: {}, tieToPid: process.pid });
process.stdout.write(`${JSON.stringify(info)}\n`);
setInterval(() => {}, 60_000);
