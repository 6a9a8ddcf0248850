import { ClientProxyFactory, Transport, type ClientProxy } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import WebSocket from 'ws';
import { GaugeExhaustedError, type Release } from '../../../src';
import { send, type Reply } from './http';
import { LIMIT, type Message } from './matrix-app';
import type { RunMeter } from './matrix-meter';
import type { HttpRoute, MatrixApp, RpcRoute, WsRoute } from './matrix-routes';
import { sleep, until, within } from '../../support/wait';

/**
 * How hard the load pushes. These numbers shape the load only; the two deadlines at the end are
 * verdicts (an answer or a drain that never comes), set far beyond what the handlers take.
 */
export const LOAD = {
  /** HTTP requests per route. */
  perRoute: 24,
  /** HTTP routes loaded at once. */
  routesPerWave: 7,
  /** Requests (and messages) start at random moments within this many ms. */
  spreadMs: 150,
  /** Share of HTTP requests whose client hangs up. */
  abortRate: 0.3,
  /** ... at a random moment within this many ms of sending. */
  abortWithinMs: 120,
  /** WebSocket connections (and RPC clients) per handler; the first one leaves mid-way. */
  connections: 3,
  /** Messages per WebSocket connection or RPC client. */
  messages: 8,
  /** Longest an answer may take before it counts as missing (generous: a verdict, not a shape). */
  answerWithinMs: 10_000,
  /** Longest the gauges may take to drain once every answer is in (handlers take < 100 ms). */
  settleWithinMs: 5_000,
};

/** A seeded PRNG, so a load shape can be replayed with MATRIX_SEED. */
export { seeded } from '../../support/random';

/** What happened to one gauge's requests: answers by status, and everything that was wrong. */
export class Findings {
  readonly problems = new Map<string, string[]>();
  readonly statuses = new Map<string, Record<string, number>>();

  problem(gauge: string, text: string): void {
    const list = this.problems.get(gauge) ?? [];
    if (!this.problems.has(gauge)) this.problems.set(gauge, list);
    if (list.length < 12) list.push(text);
    else if (list.length === 12) list.push('... (more)');
  }

  count(gauge: string, status: number | string): void {
    const counts = this.statuses.get(gauge) ?? {};
    this.statuses.set(gauge, counts);
    counts[status] = (counts[status] ?? 0) + 1;
  }

  of(gauge: string): string[] {
    return this.problems.get(gauge) ?? [];
  }
}

const brief = (text: string) => (text.length > 160 ? `${text.slice(0, 160)}...` : text);
const refusals = (remote: boolean) => (remote ? [429, 503] : [429]);

/**
 * Takes every slot of `gauge` from outside, runs `body`, gives them back. On Redis a lease whose
 * release is still on the wire may hold a slot a moment longer: taking is retried until then.
 */
async function whileFull<T>(app: MatrixApp, gauge: string, body: () => Promise<T>): Promise<T> {
  const held: Release[] = [];
  const deadline = Date.now() + LOAD.settleWithinMs;
  try {
    while (held.length < LIMIT) {
      try {
        held.push(await app.gauge(gauge).acquire());
      } catch (error) {
        if (!(error instanceof GaugeExhaustedError) || Date.now() > deadline) throw error;
        await sleep(10);
      }
    }
    return await body();
  } finally {
    for (const release of held) release();
  }
}

/**
 * Takes and gives back a slot of every gauge, retrying until it works: a remote store connects on
 * first use, and a queue's wait may be shorter than that, which would turn lone requests away.
 */
export async function warmUp(app: MatrixApp, gauges: readonly string[]): Promise<void> {
  const deadline = Date.now() + LOAD.settleWithinMs;
  for (const gauge of gauges) {
    for (;;) {
      try {
        (await app.gauge(gauge).acquire())();
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(20);
      }
    }
  }
}

/** Waits until `gauge` holds no slot and none of its handlers runs. */
function idle(app: MatrixApp, meter: RunMeter, gauge: string): Promise<void> {
  const g = app.gauge(gauge);
  return until(
    () => g.inFlight === 0 && g.queued === 0 && meter.running(gauge) === 0,
    `"${gauge}" is idle`,
    LOAD.answerWithinMs,
  );
}

// ---------------------------------------------------------------------------------------------
// Lone requests: each construct, alone on an idle app, answers as specified.

export async function loneHttp(
  app: MatrixApp,
  meter: RunMeter,
  route: HttpRoute,
  remote: boolean,
  findings: Findings,
): Promise<void> {
  for (const lone of route.lone) {
    const what = `lone GET ${lone.path}`;
    try {
      await idle(app, meter, route.gauge);
      const before = meter.runs(route.gauge);
      const reply = await within(send(app.url, lone.path).reply, LOAD.answerWithinMs, what);
      const runs = meter.runs(route.gauge) - before;
      if (reply.status !== lone.status) {
        findings.problem(
          route.gauge,
          `${what}: ${reply.status} (expected ${lone.status}) ${brief(reply.body)}`,
        );
      }
      const body = lone.body;
      if (
        body !== undefined &&
        !(typeof body === 'string' ? reply.body === body : body.test(reply.body))
      ) {
        findings.problem(
          route.gauge,
          `${what}: body ${JSON.stringify(brief(reply.body))} (expected ${String(body)})`,
        );
      }
      const exact = !(remote && lone.raceWithStore);
      if (exact ? runs !== lone.runs : runs > lone.runs) {
        findings.problem(
          route.gauge,
          `${what}: the handler ran ${runs} times (expected ${exact ? '' : 'at most '}${lone.runs})`,
        );
      }
    } catch (error) {
      findings.problem(route.gauge, `${what}: ${String(error)}`);
    }
  }
}

/** A full gauge refuses over HTTP with 429 and Retry-After, and runs nothing. */
export async function refusalHttp(
  app: MatrixApp,
  meter: RunMeter,
  findings: Findings,
): Promise<void> {
  const gauge = 'plain';
  try {
    await idle(app, meter, gauge);
    const before = meter.runs(gauge);
    const reply: Reply = await whileFull(app, gauge, () =>
      within(send(app.url, '/plain/promise').reply, LOAD.answerWithinMs, 'refused GET'),
    );
    if (reply.status !== 429 || reply.headers['retry-after'] === undefined) {
      findings.problem(
        gauge,
        `GET on a full gauge: ${reply.status}, Retry-After ${String(reply.headers['retry-after'])} (expected 429 with Retry-After)`,
      );
    }
    if (meter.runs(gauge) !== before)
      findings.problem(gauge, 'GET on a full gauge ran the handler');
  } catch (error) {
    findings.problem(gauge, `GET on a full gauge: ${String(error)}`);
  }
}

interface WsMessage {
  event: string;
  data: unknown;
}

interface WsClient {
  socket: WebSocket;
  received: WsMessage[];
}

async function connect(url: string): Promise<WsClient> {
  const socket = new WebSocket(url);
  const received: WsMessage[] = [];
  socket.on('message', (raw: WebSocket.RawData) => {
    received.push(JSON.parse(String(raw)) as WsMessage);
  });
  socket.on('error', () => undefined); // a refused or reset connection shows up as missing replies
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  return { socket, received };
}

const statusOf = (message: WsMessage | unknown) =>
  (message as { data?: { statusCode?: unknown } })?.data?.statusCode;

/** Replies to `route`'s messages in `received` that are complete (done, exception or last tick). */
function complete(route: WsRoute, received: readonly WsMessage[]): number {
  return received.filter(
    (m) =>
      m.event === 'exception' ||
      (!route.stream && m.event === 'done') ||
      (route.stream && m.event === 'tick' && (m.data as { last?: boolean }).last === true),
  ).length;
}

/** Each gateway handler, alone: its reply, its runs; then a refusal from a full gauge. */
export async function loneWs(
  app: MatrixApp,
  meter: RunMeter,
  routes: readonly WsRoute[],
  remote: boolean,
  findings: Findings,
): Promise<void> {
  let client: WsClient | undefined;
  try {
    client = await connect(app.wsUrl);
  } catch (error) {
    for (const route of routes) findings.problem(route.gauge, `WebSocket: ${String(error)}`);
    return;
  }
  const { socket, received } = client;
  for (const route of routes) {
    const what = `lone message ${route.gauge}`;
    try {
      await idle(app, meter, route.gauge);
      const before = meter.runs(route.gauge);
      received.length = 0;
      socket.send(JSON.stringify({ event: route.gauge, data: { id: 'lone' } }));
      await until(
        () => complete(route, received) === 1,
        `${what} is answered`,
        LOAD.answerWithinMs,
      );
      const runs = meter.runs(route.gauge) - before;
      const last = received.at(-1);
      if (last === undefined) throw new Error('no message arrived');
      if (route.lone.exception !== undefined) {
        if (last.event !== 'exception' || statusOf(last) !== route.lone.exception) {
          findings.problem(
            route.gauge,
            `${what}: ${JSON.stringify(last)} (expected an exception with statusCode ${route.lone.exception})`,
          );
        }
      } else if (last.event === 'exception' || (route.stream && received.length !== 4)) {
        findings.problem(route.gauge, `${what}: ${JSON.stringify(received)}`);
      }
      const exact = !(remote && route.lone.raceWithStore);
      if (exact ? runs !== route.lone.runs : runs > route.lone.runs) {
        findings.problem(
          route.gauge,
          `${what}: the handler ran ${runs} times (expected ${route.lone.runs})`,
        );
      }
    } catch (error) {
      findings.problem(route.gauge, `${what}: ${String(error)}`);
    }
  }
  const gauge = 'ws-plain';
  try {
    await idle(app, meter, gauge);
    received.length = 0;
    const before = meter.runs(gauge);
    await whileFull(app, gauge, async () => {
      socket.send(JSON.stringify({ event: gauge, data: { id: 'refused' } }));
      await until(() => received.length === 1, 'the refusal arrives', LOAD.answerWithinMs);
    });
    if (received[0]?.event !== 'exception' || !isRefusal(received[0].data)) {
      findings.problem(
        gauge,
        `message to a full gauge: ${JSON.stringify(received[0])} (expected a 429 refusal payload)`,
      );
    }
    if (meter.runs(gauge) !== before)
      findings.problem(gauge, 'a message to a full gauge ran the handler');
  } catch (error) {
    findings.problem(gauge, `message to a full gauge: ${String(error)}`);
  }
  socket.close();
}

/** The payload an RPC or WebSocket client gets from a full gauge (whatever its Retry-After). */
function isRefusal(payload: unknown): boolean {
  const p = payload as Record<string, unknown> | undefined;
  return (
    p?.status === 'error' &&
    p.statusCode === 429 &&
    p.error === 'Too Many Requests' &&
    p.message === 'Too many requests' &&
    typeof p.retryAfterSeconds === 'number'
  );
}

async function rpcClient(port: number): Promise<ClientProxy> {
  const client = ClientProxyFactory.create({
    transport: Transport.TCP,
    options: { host: '127.0.0.1', port },
  });
  await client.connect();
  return client;
}

/** What an RPC call ends with: its value, or the error payload it was rejected with. */
function call(
  client: ClientProxy,
  pattern: string,
  id: string,
): Promise<{ value?: unknown; error?: unknown }> {
  return firstValueFrom(client.send<unknown, Message>(pattern, { id })).then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

/** Each microservice handler, alone; then a refusal from a full gauge. */
export async function loneRpc(
  app: MatrixApp,
  meter: RunMeter,
  routes: readonly RpcRoute[],
  remote: boolean,
  findings: Findings,
): Promise<void> {
  let client: ClientProxy | undefined;
  try {
    client = await rpcClient(app.rpcPort);
    for (const route of routes) {
      const what = `lone call ${route.gauge}`;
      try {
        await idle(app, meter, route.gauge);
        const before = meter.runs(route.gauge);
        const result = await within(call(client, route.gauge, 'lone'), LOAD.answerWithinMs, what);
        const runs = meter.runs(route.gauge) - before;
        const ok =
          route.lone.error === undefined
            ? result.value === 'done lone'
            : statusOf({ data: result.error }) === route.lone.error;
        if (!ok) findings.problem(route.gauge, `${what}: ${JSON.stringify(result)}`);
        const exact = !(remote && route.lone.raceWithStore);
        if (exact ? runs !== route.lone.runs : runs > route.lone.runs) {
          findings.problem(
            route.gauge,
            `${what}: the handler ran ${runs} times (expected ${route.lone.runs})`,
          );
        }
      } catch (error) {
        findings.problem(route.gauge, `${what}: ${String(error)}`);
      }
    }
    const gauge = 'rpc-plain';
    await idle(app, meter, gauge);
    const before = meter.runs(gauge);
    const refused = await whileFull(app, gauge, () =>
      within(call(client!, gauge, 'refused'), LOAD.answerWithinMs, 'call to a full gauge'),
    );
    if (!isRefusal(refused.error)) {
      findings.problem(
        gauge,
        `call to a full gauge: ${JSON.stringify(refused)} (expected a 429 refusal payload)`,
      );
    }
    if (meter.runs(gauge) !== before)
      findings.problem(gauge, 'a call to a full gauge ran the handler');
  } catch (error) {
    for (const route of routes) findings.problem(route.gauge, `RPC: ${String(error)}`);
  } finally {
    client?.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The load: every construct at once, many requests each, some clients leaving at random.

export async function loadHttp(
  app: MatrixApp,
  routes: readonly HttpRoute[],
  remote: boolean,
  random: () => number,
  findings: Findings,
): Promise<void> {
  // In waves of a few routes each: a few hundred connections at once overflow the listen backlog
  // (the client then retries after a second), and a saturated server stretches the spread out.
  for (let first = 0; first < routes.length; first += LOAD.routesPerWave) {
    await wave(app, routes.slice(first, first + LOAD.routesPerWave), remote, random, findings);
  }
}

async function wave(
  app: MatrixApp,
  routes: readonly HttpRoute[],
  remote: boolean,
  random: () => number,
  findings: Findings,
): Promise<void> {
  const requests: Promise<void>[] = [];
  for (const route of routes) {
    const allowed = new Set([...route.answers, ...refusals(remote)]);
    const { requests: count = LOAD.perRoute, abortRate = LOAD.abortRate } = route.shape ?? {};
    const abortWithinMs = route.shape?.abortWithinMs ?? LOAD.abortWithinMs;
    for (let i = 0; i < count; i++) {
      const path = route.load(i, random);
      const startAt = random() * LOAD.spreadMs;
      const abortAfter = random() < abortRate ? random() * abortWithinMs : undefined;
      requests.push(
        (async () => {
          await sleep(startAt);
          const request = send(app.url, path);
          let aborted = false;
          const timer =
            abortAfter === undefined
              ? undefined
              : setTimeout(() => {
                  aborted = true;
                  request.abort();
                }, abortAfter);
          try {
            const reply = await within(request.reply, LOAD.answerWithinMs, `GET ${path}`);
            findings.count(route.gauge, reply.status);
            if (!allowed.has(reply.status)) {
              findings.problem(route.gauge, `GET ${path}: ${reply.status} ${brief(reply.body)}`);
            }
          } catch (error) {
            if (aborted) {
              findings.count(route.gauge, 'aborted');
            } else {
              request.abort();
              findings.problem(route.gauge, `GET ${path}: ${String(error)}`);
            }
          } finally {
            clearTimeout(timer);
          }
        })(),
      );
    }
  }
  await Promise.all(requests);
}

export async function loadWs(
  app: MatrixApp,
  routes: readonly WsRoute[],
  remote: boolean,
  random: () => number,
  findings: Findings,
): Promise<void> {
  await Promise.all(
    routes.flatMap((route) =>
      Array.from({ length: LOAD.connections }, async (_, index) => {
        const leaves = index === 0;
        const leaveAt = LOAD.abortWithinMs * (0.2 + random());
        const times = Array.from({ length: LOAD.messages }, () => random() * LOAD.spreadMs);
        let client: WsClient;
        try {
          client = await connect(app.wsUrl);
        } catch (error) {
          findings.problem(route.gauge, `WebSocket: ${String(error)}`);
          return;
        }
        const { socket, received } = client;
        const allowed = new Set([...route.answers, ...refusals(remote)]);
        let sent = 0;
        const sends = times.map(async (at, i) => {
          await sleep(at);
          if (socket.readyState !== WebSocket.OPEN) return;
          socket.send(JSON.stringify({ event: route.gauge, data: { id: `m${index}-${i}` } }));
          sent++;
        });
        if (leaves) {
          await sleep(leaveAt);
          socket.terminate(); // the client goes away without a closing handshake
          await Promise.all(sends);
        } else {
          await Promise.all(sends);
          try {
            await until(
              () => complete(route, received) >= sent,
              `${route.gauge}: every message is answered`,
              LOAD.answerWithinMs,
            );
          } catch (error) {
            findings.problem(
              route.gauge,
              `${String(error)} (${complete(route, received)} of ${sent})`,
            );
          }
          socket.close();
        }
        for (const message of received) {
          if (message.event === 'exception') {
            findings.count(route.gauge, `exception ${String(statusOf(message))}`);
            if (!allowed.has(statusOf(message) as number)) {
              findings.problem(route.gauge, `unexpected reply ${brief(JSON.stringify(message))}`);
            }
          } else if (message.event === (route.stream ? 'tick' : 'done')) {
            if (route.stream ? (message.data as { last?: boolean }).last : true) {
              findings.count(route.gauge, message.event);
            }
          } else {
            findings.problem(route.gauge, `unexpected reply ${brief(JSON.stringify(message))}`);
          }
        }
      }),
    ),
  );
}

export async function loadRpc(
  app: MatrixApp,
  routes: readonly RpcRoute[],
  remote: boolean,
  random: () => number,
  findings: Findings,
): Promise<void> {
  await Promise.all(
    routes.flatMap((route) =>
      Array.from({ length: LOAD.connections }, async (_, index) => {
        const leaves = index === 0;
        const leaveAt = LOAD.abortWithinMs * (0.2 + random());
        const times = Array.from({ length: LOAD.messages }, () => random() * LOAD.spreadMs);
        const allowed = new Set([...route.answers, ...refusals(remote)]);
        let client: ClientProxy;
        try {
          client = await rpcClient(app.rpcPort);
        } catch (error) {
          findings.problem(route.gauge, `RPC client: ${String(error)}`);
          return;
        }
        let closed = false;
        const calls = times.map(async (at, i) => {
          await sleep(at);
          if (closed) return; // a closed ClientProxy would connect again
          const id = `m${index}-${i}`;
          const pending = call(client, route.gauge, id);
          if (leaves) return; // its client leaves: its answer may never come
          try {
            const result = await within(pending, LOAD.answerWithinMs, `${route.gauge} ${id}`);
            if (result.value === `done ${id}`) {
              findings.count(route.gauge, 'done');
            } else {
              const status = statusOf({ data: result.error });
              findings.count(route.gauge, `error ${String(status)}`);
              if (!allowed.has(status as number)) {
                findings.problem(route.gauge, `unexpected answer ${brief(JSON.stringify(result))}`);
              }
            }
          } catch (error) {
            findings.problem(route.gauge, String(error));
          }
        });
        if (leaves) {
          await sleep(leaveAt);
          closed = true;
          client.close();
          await Promise.all(calls);
        } else {
          await Promise.all(calls);
          client.close();
        }
      }),
    ),
  );
}

/**
 * Waits until every gauge holds no slot and has no waiter, and no handler runs; returns what is
 * still busy at the deadline (nothing when all settled).
 */
export async function settle(
  app: MatrixApp,
  meter: RunMeter,
  gauges: readonly string[],
): Promise<Map<string, string>> {
  const busy = () => {
    const left = new Map<string, string>();
    for (const name of gauges) {
      const g = app.gauge(name);
      const running = meter.running(name);
      if (g.inFlight !== 0 || g.queued !== 0 || running !== 0) {
        left.set(
          name,
          `inFlight ${g.inFlight}, queued ${g.queued}, handler runs in progress ${running}`,
        );
      }
    }
    return left;
  };
  try {
    await until(() => busy().size === 0, 'every gauge is idle', LOAD.settleWithinMs);
  } catch {
    // reported per gauge below
  }
  return busy();
}
