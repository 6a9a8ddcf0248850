import 'reflect-metadata';
import { Controller, Get, Param, type ExecutionContext } from '@nestjs/common';
import { NEVER, Observable } from 'rxjs';
import {
  BackpressureModule,
  Limited,
  Priority,
  trustedPriorityHeader,
  type LoopReading,
  type LoopSampler,
} from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { json, send } from './support/http';
import { Probe } from './support/probe';
import { headerOf } from './support/request-headers';
import { probeFlows } from './support/probe-flows';
import { until } from '../support/wait';

/**
 * A hostile user of "who gets the slot": odd resolver results, refusals of every reason (status,
 * body, Retry-After), and clients that leave at awkward moments. Every case ends with every gauge
 * drained: nothing held, nothing queued.
 */

/** What the partition resolver returns, chosen by the request's `x-case` header. */
const KEYS: Record<string, unknown> = {
  object: { tenant: 'a' },
  proto: '__proto__',
  ctor: 'constructor',
  huge: 'x'.repeat(300_000),
  unicode: '租户-🦄-\u0000-\uD800',
  number: 42,
  promise: Promise.resolve('a'),
  array: ['a', 'b'],
};

const hostileKey = (context: ExecutionContext): string | undefined => {
  const which = headerOf(context, 'x-case');
  if (which === 'throws') throw new Error('resolver bug');
  if (which === 'unprintable') throw Object.create(null) as Error; // String() of it throws
  return KEYS[String(which)] as string | undefined;
};

const hostilePriority = (context: ExecutionContext) => {
  const which = headerOf(context, 'x-case');
  if (which === 'throws') throw new TypeError('resolver bug');
  if (which === 'unprintable') throw Object.create(null) as Error;
  if (which === 'promise') return Promise.resolve('critical') as unknown as 'critical';
  if (which === 'upper') return 'CRITICAL' as 'critical';
  if (which === 'object') return { level: 'critical' } as unknown as 'critical';
  return 'high';
};

/** Event-loop readings the test makes up. */
class FakeLoop implements LoopSampler {
  private watcher: ((reading: LoopReading) => void) | undefined;
  watch(watcher: (reading: LoopReading) => void): () => void {
    this.watcher = watcher;
    return () => (this.watcher = undefined);
  }
  read(delayMs: number): void {
    this.watcher?.({ delayMs, utilization: 0 });
  }
}

@Controller('odd')
class OddController {
  constructor(private readonly probe: Probe) {}

  @Get('key')
  @Limited('keys')
  key() {
    return 'ok';
  }

  @Get('priority')
  @Limited('prio')
  priority() {
    return 'ok';
  }

  @Get('header')
  @Limited('header')
  header() {
    return 'ok';
  }

  @Get('never')
  @Limited('never')
  never(): Observable<string> {
    return NEVER;
  }

  @Get('silent')
  @Limited('never')
  silent(): Observable<string> {
    return new Observable<string>(() => {
      this.probe.entered.push('silent');
    });
  }

  @Get('sync-throw')
  @Limited('keys')
  syncThrow(): string {
    throw new Error('handler bug');
  }
}

@Controller('why')
class ReasonsController {
  constructor(private readonly probe: Probe) {}

  @Get('ff/:id')
  @Limited('ff')
  async ff(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('q/:id')
  @Limited('q')
  async q(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('low/:id')
  @Limited('prio2')
  @Priority('low')
  async low(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('critical/:id')
  @Limited('prio2')
  @Priority('critical')
  async critical(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('key/:id')
  @Limited('percap')
  async key(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('loop/:id')
  @Limited('loop')
  @Priority('low')
  async loop(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }
}

describe.each(PLATFORMS)('a hostile user of who gets the slot, on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running;
  let loop: FakeLoop;
  const GAUGES = ['keys', 'prio', 'header', 'never', 'ff', 'q', 'prio2', 'percap', 'loop'];

  beforeEach(async () => {
    probe = new Probe();
    loop = new FakeLoop();
    const module = moduleOf({
      imports: [
        BackpressureModule.forRoot({
          gauges: {
            keys: { limit: 2, partition: { key: hostileKey, limit: 1 }, priorityWaitMs: 0 },
            prio: { limit: 2, priority: hostilePriority },
            header: {
              limit: 2,
              priority: trustedPriorityHeader({ trust: () => true, fallback: 'low' }),
            },
            never: { limit: 1 },
            ff: { limit: 1, retryAfterSeconds: 3 },
            q: { limit: 1, queue: { size: 1, timeoutMs: 200 }, retryAfterSeconds: 4 },
            prio2: { limit: 2, retryAfterSeconds: 5, priorityWaitMs: 0 },
            percap: {
              limit: 3,
              partition: { key: (c) => headerOf(c, 'x-tenant') as string, limit: 1 },
              retryAfterSeconds: 6,
              priorityWaitMs: 0,
            },
            loop: { limit: 4, eventLoop: { sampler: loop }, retryAfterSeconds: 7 },
          },
        }),
      ],
      controllers: [OddController, ReasonsController],
      providers: [{ provide: Probe, useValue: probe }],
    });
    running = await startApp(platform, module);
  });

  const { runs, drained, close } = probeFlows(() => ({ running, probe }), GAUGES);

  afterEach(close);

  it.each(Object.keys(KEYS).concat('throws', 'unprintable'))(
    'a partition key resolver giving %s answers 200 and leaks nothing',
    async (which) => {
      for (let i = 0; i < 3; i++) {
        const reply = await send(running.url, '/odd/key', { headers: { 'x-case': which } }).reply;
        expect(reply.status).toBe(200);
      }
      await drained();
    },
  );

  it('keys __proto__ and constructor are keys like any other (capped one by one)', async () => {
    for (const which of ['proto', 'ctor']) {
      const reply = await send(running.url, '/odd/key', { headers: { 'x-case': which } }).reply;
      expect(reply.status).toBe(200);
    }
    await drained();
  });

  it('a handler that throws synchronously frees its slot (the error is its own 500)', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await send(running.url, '/odd/sync-throw').reply).status).toBe(500);
    }
    await drained();
    expect(running.gauge('keys').admitted).toBe(3);
  });

  it.each(['throws', 'unprintable', 'promise', 'upper', 'object', 'fine'])(
    'a priority resolver giving %s answers 200 and leaks nothing',
    async (which) => {
      const reply = await send(running.url, '/odd/priority', { headers: { 'x-case': which } })
        .reply;
      expect(reply.status).toBe(200);
      await drained();
    },
  );

  it.each([
    ['repeated', { 'x-priority': 'critical, critical' }],
    ['padded', { 'x-priority': '  Critical  ' }],
    ['empty', { 'x-priority': '' }],
    ['garbage', { 'x-priority': '\u00e9\u00e9' }],
  ])('the trusted header %s answers 200', async (_what, headers) => {
    const reply = await send(running.url, '/odd/header', { headers }).reply;
    expect(reply.status).toBe(200);
    await drained();
  });

  it('a never-completing Observable frees its slot when the client leaves', async () => {
    const call = send(running.url, '/odd/never');
    await until(() => running.gauge('never').inFlight === 1, 'the handler holds the slot');
    call.abort();
    await drained();
  });

  it('a silent Observable (subscribed, never emits) frees its slot when the client leaves', async () => {
    const call = send(running.url, '/odd/silent');
    await until(() => probe.entered.includes('silent'), 'the Observable is subscribed');
    call.abort();
    await drained();
  });

  it('full: 429, reason full, Retry-After of the gauge', async () => {
    const holder = await runs('/why/ff/a', 'a');
    const refused = await send(running.url, '/why/ff/b').reply;
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('3');
    expect(json(refused)).toMatchObject({ statusCode: 429, reason: 'full' });
    probe.pass('a');
    expect((await holder.reply).status).toBe(200);
    await drained();
  });

  it('queue-full and queue-timeout: 429 with their reasons and Retry-After', async () => {
    const holder = await runs('/why/q/a', 'a');
    const waiter = send(running.url, '/why/q/b');
    await until(() => running.gauge('q').queued === 1, 'b waits');
    const full = await send(running.url, '/why/q/c').reply;
    expect(full.status).toBe(429);
    expect(full.headers['retry-after']).toBe('4');
    expect(json(full)).toMatchObject({ reason: 'queue-full' });
    const late = await waiter.reply;
    expect(late.status).toBe(429);
    expect(late.headers['retry-after']).toBe('4');
    expect(json(late)).toMatchObject({ reason: 'queue-timeout' });
    probe.pass('a');
    expect((await holder.reply).status).toBe(200);
    await drained();
  });

  it('shed-priority: 429 with its reason and Retry-After', async () => {
    const critical = await runs('/why/critical/c', 'c');
    probe.pass('c');
    expect((await critical.reply).status).toBe(200);
    const low = await runs('/why/low/l1', 'l1');
    const shed = await send(running.url, '/why/low/l2').reply;
    expect(shed.status).toBe(429);
    expect(shed.headers['retry-after']).toBe('5');
    expect(json(shed)).toMatchObject({ reason: 'shed-priority' });
    probe.pass('l1');
    expect((await low.reply).status).toBe(200);
    await drained();
  });

  it('key-over-share: 429 with its reason and Retry-After', async () => {
    const holder = await runs('/why/key/a', 'a', { 'x-tenant': 't' });
    const refused = await send(running.url, '/why/key/b', { headers: { 'x-tenant': 't' } }).reply;
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('6');
    expect(json(refused)).toMatchObject({ reason: 'key-over-share' });
    probe.pass('a');
    expect((await holder.reply).status).toBe(200);
    await drained();
  });

  it('shed-pressure: 429 with its reason and Retry-After', async () => {
    const holder = await runs('/why/loop/a', 'a');
    loop.read(40); // far over target while the gauge holds a slot
    const refused = await send(running.url, '/why/loop/b').reply;
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('7');
    expect(json(refused)).toMatchObject({ reason: 'shed-pressure' });
    probe.pass('a');
    expect((await holder.reply).status).toBe(200);
    await drained();
  });
});
