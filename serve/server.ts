/**
 * The model server: `POST /predict`, `GET /healthz`, `GET /metrics`. It polls its model source and, when the
 * production pointer moves, loads the new model and swaps it in atomically: a request holds the model it
 * started with until it finishes, and the old model is disposed once the last such request is done.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LoadedModel, ModelSource } from './model-source';
import type { InputShape } from './predict';
import { HttpError, argmax, decodeImage, describeShape, inputShapeOf, parseInstances, predictBatch } from './predict';

export interface ServeOptions {
  source: ModelSource;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Seconds between checks of the source for a new model; 0 disables polling. Default 30. */
  pollSeconds?: number;
  /** Largest request body accepted, in bytes (413 beyond). Default 5 MiB. */
  maxBodyBytes?: number;
  /**
   * Most request bodies being received at once (503 beyond, without reading the body): stalled uploads cannot
   * hold more than this × maxBodyBytes, and /healthz stays answerable. Default 32.
   */
  maxBodiesInFlight?: number;
  /** Milliseconds a client has to send a whole request (408 beyond). Default 30 000. */
  requestTimeoutMs?: number;
  /** Most images in one JSON request. Default 256. */
  maxBatch?: number;
  /** Class names to report, overriding the model's own. */
  labels?: string[];
  /** Log lines (model loads, reload failures). Default stderr. */
  log?: (line: string) => void;
}

interface Slot {
  loaded: LoadedModel & { fingerprint?: string };
  shape: InputShape;
  refs: number;
  retired: boolean;
}

export interface ModelServer {
  /** `http://host:port`. */
  url: string;
  port: number;
  server: Server;
  registry: Registry;
  /** The model answering now. */
  current(): { version: string; uri: string };
  /** Checks the source now and swaps when it changed; resolves true when a new model was swapped in. */
  reload(): Promise<boolean>;
  /** Stops polling and listening, waits for in-flight requests, disposes the model. */
  close(): Promise<void>;
}

function metrics(registry: Registry) {
  return {
    requests: new Counter({
      name: 'tempered_serve_requests_total',
      help: 'HTTP requests by route and status code',
      labelNames: ['route', 'code'] as const,
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'tempered_serve_request_duration_seconds',
      help: 'Request latency by route',
      labelNames: ['route'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    images: new Counter({
      name: 'tempered_serve_predictions_total',
      help: 'Images classified',
      registers: [registry],
    }),
    model: new Gauge({
      name: 'tempered_serve_model_info',
      help: 'The model being served (value 1)',
      labelNames: ['version', 'uri'] as const,
      registers: [registry],
    }),
    reloads: new Counter({
      name: 'tempered_serve_model_reloads_total',
      help: 'Model swaps (result=ok) and failed reload attempts (result=error)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
  };
}

/** Reads the body up to `limit` bytes; beyond it, drains the rest and throws 413. */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new HttpError(413, `body of ${declared} bytes is over the limit of ${limit} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= limit) chunks.push(chunk);
  }
  if (size > limit) throw new HttpError(413, `body of ${size} bytes is over the limit of ${limit} bytes`);
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? `${JSON.stringify(body)}\n` : String(body);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Loads the source's model and starts listening. Fails (nothing left open) when the first load fails. */
export async function startModelServer(options: ServeOptions): Promise<ModelServer> {
  const {
    source,
    port = 8080,
    host = '127.0.0.1',
    pollSeconds = 30,
    maxBodyBytes = 5 * 1024 * 1024,
    maxBatch = 256,
    maxBodiesInFlight = 32,
    requestTimeoutMs = 30_000,
    log = (line: string) => process.stderr.write(`${line}\n`),
  } = options;
  const registry = new Registry();
  const m = metrics(registry);

  const prepare = (loaded: Slot['loaded']): Slot => {
    try {
      return { loaded, shape: inputShapeOf(loaded.model), refs: 0, retired: false };
    } catch (err) {
      loaded.model.dispose();
      throw new Error(`${loaded.uri}: ${(err as Error).message}`);
    }
  };
  let slot = prepare(await source.load());
  m.model.set({ version: slot.loaded.version, uri: slot.loaded.uri }, 1);
  log(`serving ${slot.loaded.version} (${slot.loaded.uri}), input ${describeShape(slot.shape)}`);

  const release = (s: Slot) => {
    s.refs--;
    if (s.retired && s.refs === 0) s.loaded.model.dispose();
  };

  let reloading: Promise<boolean> | undefined;
  const reload = () =>
    (reloading ??= (async () => {
      try {
        const fp = await source.fingerprint();
        if (fp === undefined || fp === slot.loaded.fingerprint) return false;
        const next = prepare(await source.load());
        const old = slot;
        slot = next; // the swap: requests from here on take the new model
        m.model.reset();
        m.model.set({ version: next.loaded.version, uri: next.loaded.uri }, 1);
        m.reloads.inc({ result: 'ok' });
        old.retired = true;
        if (old.refs === 0) old.loaded.model.dispose();
        log(`now serving ${next.loaded.version} (${next.loaded.uri}); ${old.loaded.version} retired`);
        return true;
      } catch (err) {
        m.reloads.inc({ result: 'error' });
        log(
          `reload from ${source.description} failed, still serving ${slot.loaded.version}: ${(err as Error).message}`,
        );
        return false;
      } finally {
        reloading = undefined;
      }
    })());

  async function predict(req: IncomingMessage, res: ServerResponse): Promise<number> {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (!['image/png', 'image/jpeg', 'application/json'].includes(type)) {
      throw new HttpError(
        415,
        `Content-Type ${type || '(none)'} is not accepted; send image/png, image/jpeg or application/json`,
      );
    }
    if (bodiesInFlight >= maxBodiesInFlight) {
      res.setHeader('Retry-After', '1');
      res.setHeader('Connection', 'close');
      throw new HttpError(503, `${bodiesInFlight} request bodies in flight, the most this server takes; retry`);
    }
    bodiesInFlight++;
    let body: Buffer;
    try {
      body = await readBody(req, maxBodyBytes);
    } finally {
      bodiesInFlight--;
    }
    if (body.length === 0) throw new HttpError(400, 'empty body; send an image or { "instances": [...] }');
    const s = slot;
    s.refs++;
    try {
      let batch: { data: Float32Array; n: number };
      if (type === 'application/json') {
        let json: unknown;
        try {
          json = JSON.parse(body.toString('utf8'));
        } catch (err) {
          throw new HttpError(400, `body is not valid JSON: ${(err as Error).message}`);
        }
        batch = parseInstances(json, s.shape, maxBatch);
      } else {
        batch = { data: await decodeImage(body, type, s.shape), n: 1 };
      }
      const probabilities = await predictBatch(s.loaded.model, batch.data, batch.n, s.shape);
      const labels = options.labels ?? s.loaded.labels;
      m.images.inc(batch.n);
      send(res, 200, {
        predictions: probabilities.map((p) => {
          const cls = argmax(p);
          return { probabilities: p, class: cls, ...(labels?.[cls] !== undefined ? { label: labels[cls] } : {}) };
        }),
        model: { version: s.loaded.version, uri: s.loaded.uri },
      });
      return 200;
    } finally {
      release(s);
    }
  }

  let inFlight = 0;
  let bodiesInFlight = 0;
  let drained: (() => void) | undefined;
  const server = createServer((req, res) => {
    const started = process.hrtime.bigint();
    const path = (req.url ?? '/').split('?')[0];
    const route = ['/predict', '/healthz', '/metrics'].includes(path) ? path : 'other';
    inFlight++;
    const handle = async (): Promise<number> => {
      if (path === '/predict') {
        if (req.method !== 'POST') throw new HttpError(405, 'use POST /predict');
        return predict(req, res);
      }
      if (path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
        send(res, 200, {
          status: 'ok',
          model: { version: slot.loaded.version, uri: slot.loaded.uri },
          input: slot.shape,
        });
        return 200;
      }
      if (path === '/metrics' && req.method === 'GET') {
        send(res, 200, await registry.metrics(), registry.contentType);
        return 200;
      }
      throw new HttpError(404, `no route ${req.method} ${path}; try POST /predict, GET /healthz or GET /metrics`);
    };
    void handle()
      .catch((err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
        if (status === 500) log(`${req.method} ${path}: ${(err as Error).stack ?? String(err)}`);
        if (!res.headersSent) send(res, status, { error: (err as Error).message });
        else res.end();
        return status;
      })
      .then((code) => {
        m.requests.inc({ route, code: String(code) });
        m.latency.observe({ route }, Number(process.hrtime.bigint() - started) / 1e9);
        if (--inFlight === 0) drained?.();
      });
  });

  // A client that sends its body slowly (or never) is cut off: bodies in flight stay few and short-lived.
  server.requestTimeout = requestTimeoutMs;
  server.headersTimeout = Math.min(requestTimeoutMs, 60_000);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: Error) => {
    slot.loaded.model.dispose();
    throw new Error(`cannot listen on ${host}:${port}: ${err.message}`);
  });
  const addr = server.address() as AddressInfo;
  const timer = pollSeconds > 0 ? setInterval(() => void reload(), pollSeconds * 1000) : undefined;
  timer?.unref();

  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}`,
    port: addr.port,
    server,
    registry,
    current: () => ({ version: slot.loaded.version, uri: slot.loaded.uri }),
    reload,
    async close() {
      if (timer) clearInterval(timer);
      await reloading;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
      await closed;
      slot.retired = true;
      if (slot.refs === 0) slot.loaded.model.dispose();
    },
  };
}
