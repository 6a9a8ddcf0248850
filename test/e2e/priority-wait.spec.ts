import 'reflect-metadata';
import { Controller, Get, Param } from '@nestjs/common';
import { BackpressureModule, Limited, Priority } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { json, send, type Call } from './support/http';
import { Probe } from './support/probe';
import { until } from '../support/wait';

/**
 * The brief wait of a fail-fast gauge with priorities (`priorityWaitMs`), over HTTP: a `critical`
 * request that finds the one slot held by a `low` one waits for it instead of a 429.
 */
/** A controller on gauge `name` at `/name`: a `low` and a `critical` route, held by the probe. */
function waitController(name: string) {
  @Controller(name)
  @Limited(name)
  class WaitController {
    constructor(private readonly probe: Probe) {}

    @Get('low/:id')
    @Priority('low')
    async low(@Param('id') id: string) {
      await this.probe.enter(id);
      return id;
    }

    @Get('critical/:id')
    @Priority('critical')
    async critical(@Param('id') id: string) {
      await this.probe.enter(id);
      return id;
    }
  }
  return WaitController;
}

const CONTROLLERS = ['long', 'none', 'short'].map(waitController);

/** Long enough that the test, not the timer, ends the wait. */
const LONG_WAIT_MS = 30_000;
/** Short enough to run out in the test; the refusal is awaited, not slept for. */
const SHORT_WAIT_MS = 30;

describe.each(PLATFORMS)('priorityWaitMs on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running;

  beforeEach(async () => {
    probe = new Probe();
    const module = moduleOf({
      imports: [
        BackpressureModule.forRoot({
          gauges: {
            long: { limit: 1, priorityWaitMs: LONG_WAIT_MS },
            none: { limit: 1, priorityWaitMs: 0 },
            short: { limit: 1, priorityWaitMs: SHORT_WAIT_MS, retryAfterSeconds: 7 },
          },
        }),
      ],
      controllers: CONTROLLERS,
      providers: [{ provide: Probe, useValue: probe }],
    });
    running = await startApp(platform, module);
  });

  afterEach(async () => {
    probe.openAll();
    await running.close();
  });

  /** Sends `path` and waits until its handler runs (it holds the slot until `probe.pass(id)`). */
  async function runs(path: string, id: string): Promise<Call> {
    const entered = probe.entered.length;
    const call = send(running.url, path);
    await until(
      () => probe.entered.length === entered + 1,
      () => `${id} runs (entered: ${probe.entered.join(', ')})`,
    );
    return call;
  }

  /** Sends `path` and waits until it waits on gauge `name` for a slot. */
  async function waits(name: string, path: string): Promise<Call> {
    const queued = running.gauge(name).queued;
    const call = send(running.url, path);
    await until(
      () => running.gauge(name).queued === queued + 1,
      () => `${path} waits (queued: ${running.gauge(name).queued}, entered: ${probe.entered})`,
    );
    return call;
  }

  /** A low request holding gauge `name`'s only slot, after an earlier low one (recent low arrivals). */
  async function lowHolds(name: string): Promise<Call> {
    const first = await runs(`/${name}/low/l0`, 'l0');
    probe.pass('l0');
    expect((await first.reply).status).toBe(200);
    return runs(`/${name}/low/l1`, 'l1');
  }

  it('a critical request waits for the slot a low one holds and is served when it ends', async () => {
    const low = await lowHolds('long');
    const critical = await waits('long', '/long/critical/c');
    expect(probe.entered).toEqual(['l0', 'l1']);
    expect(running.gauge('long')).toMatchObject({ inFlight: 1, queued: 1, rejected: 0 });

    probe.pass('l1');
    await until(() => probe.entered.length === 3, 'the critical handler runs');
    expect(probe.entered).toEqual(['l0', 'l1', 'c']);
    expect(running.gauge('long')).toMatchObject({ inFlight: 1, queued: 0 });
    probe.pass('c');
    expect((await low.reply).status).toBe(200);
    const served = await critical.reply;
    expect(served.status).toBe(200);
    expect(served.body).toBe('c');
    await until(() => running.gauge('long').inFlight === 0, 'the slot is free');
    expect(running.gauge('long')).toMatchObject({ queued: 0, admitted: 3, rejected: 0 });
  });

  it('with priorityWaitMs: 0 the critical request is refused at once', async () => {
    const low = await lowHolds('none');
    const refused = await send(running.url, '/none/critical/c').reply;
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(json(refused)).toMatchObject({ statusCode: 429, reason: 'full' });
    expect(running.gauge('none')).toMatchObject({ inFlight: 1, queued: 0, rejected: 1 });
    probe.pass('l1');
    expect((await low.reply).status).toBe(200);
    expect(probe.entered).toEqual(['l0', 'l1']);
  });

  it("a critical request whose wait runs out gets a 429 with the gauge's Retry-After", async () => {
    const low = await lowHolds('short');
    const critical = send(running.url, '/short/critical/c');
    const refused = await critical.reply;
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('7');
    expect(json(refused)).toStrictEqual({
      statusCode: 429,
      message: 'Too many requests',
      error: 'Too Many Requests',
      reason: 'full',
    });
    expect(running.gauge('short')).toMatchObject({ inFlight: 1, queued: 0, rejected: 1 });
    probe.pass('l1');
    expect((await low.reply).status).toBe(200);
    expect(probe.entered).toEqual(['l0', 'l1']);
    await until(() => running.gauge('short').inFlight === 0, 'the slot is free');
  });

  it('a client that leaves while waiting takes no slot and leaves nothing queued', async () => {
    const low = await lowHolds('long');
    const critical = await waits('long', '/long/critical/c');
    critical.abort();
    await until(
      () => running.gauge('long').queued === 0,
      () => `the waiter leaves (queued: ${running.gauge('long').queued})`,
    );
    expect(running.gauge('long')).toMatchObject({ inFlight: 1, aborted: 1 });

    probe.pass('l1');
    expect((await low.reply).status).toBe(200);
    await until(() => running.gauge('long').inFlight === 0, 'the slot is free');
    expect(probe.entered).toEqual(['l0', 'l1']);
    // The slot is really free: the next request gets it at once.
    const next = await runs('/long/low/l2', 'l2');
    probe.pass('l2');
    expect((await next.reply).status).toBe(200);
    await until(() => running.gauge('long').inFlight === 0, 'the slot is free again');
    expect(running.gauge('long')).toMatchObject({ queued: 0, admitted: 3, aborted: 1 });
  });
});
