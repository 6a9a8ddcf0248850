import 'reflect-metadata';
import {
  Controller,
  Get,
  Injectable,
  Param,
  ServiceUnavailableException,
  UseInterceptors,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { catchError, of, retry, throwError, timeout, type Observable } from 'rxjs';
import { BackpressureModule, Limited, Priority } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { json, send, type Call } from './support/http';
import { Probe } from './support/probe';
import { headerOf, tenantOf } from './support/request-headers';
import { probeFlows } from './support/probe-flows';
import { until } from '../support/wait';

/**
 * Interceptors outside `@Limited` (global ones) and inside it, around the waits of "who gets the
 * slot": a priority's brief wait, a key's brief wait, a CoDel queue. Whatever they do — time the
 * wait out, retry it, turn its refusal into a fallback — nothing stays held or queued, and a
 * fallback answer carries no `Retry-After`.
 */

/** Global: what the request's `x-outer` header asks for, around the whole chain. */
@Injectable()
class Outer implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const mode = headerOf(context, 'x-outer');
    if (mode === 'timeout') return next.handle().pipe(timeout({ first: 80 }));
    if (mode === 'retry') return next.handle().pipe(retry(2));
    if (mode === 'fallback') return next.handle().pipe(catchError(() => of('fallback')));
    if (mode === 'unavailable') {
      const unavailable = () => new ServiceUnavailableException('try later');
      return next.handle().pipe(catchError(() => throwError(unavailable)));
    }
    return next.handle();
  }
}

/** Inside a class-level `@Limited`: retries a refused or failed run, then falls back. */
class InnerRetryFallback implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(
      retry(1),
      catchError(() => of('inner-fallback')),
    );
  }
}

@Controller('w')
class WaitsController {
  constructor(private readonly probe: Probe) {}

  @Get('low/:id')
  @Limited('brief')
  @Priority('low')
  async low(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('critical/:id')
  @Limited('brief')
  @Priority('critical')
  async critical(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('key/:id')
  @Limited('keyed')
  async key(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('codel/:id')
  @Limited('codel')
  async codel(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }
}

@Controller('inner')
@Limited('inner')
@Priority('high')
class InnerController {
  constructor(private readonly probe: Probe) {}

  @Get('hold/:id')
  @Priority('low')
  async hold(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('fails/:id')
  @UseInterceptors(InnerRetryFallback)
  async fails(@Param('id') id: string) {
    await this.probe.enter(id);
    throw new Error('boom');
  }

  @Get('other/:id')
  @Limited('other')
  @Priority('critical')
  async other(@Param('id') id: string) {
    await this.probe.enter(id);
    return id;
  }
}

const GAUGES = ['brief', 'keyed', 'codel', 'inner', 'other'];

describe.each(PLATFORMS)('outer and inner interceptors around waits, on %s', (platform) => {
  let probe: Probe;
  let running: Running;

  beforeEach(async () => {
    probe = new Probe();
    running = await startApp(
      platform as Platform,
      moduleOf({
        imports: [
          BackpressureModule.forRoot({
            gauges: {
              brief: { limit: 1, priorityWaitMs: 30_000 },
              keyed: { limit: 2, partition: tenantOf, priorityWaitMs: 30_000 },
              codel: { limit: 1, queue: { size: 4, timeoutMs: 30_000, discipline: 'codel' } },
              inner: { limit: 2, priorityWaitMs: 30_000, partition: tenantOf },
              other: { limit: 1 },
            },
          }),
        ],
        controllers: [WaitsController, InnerController],
        providers: [{ provide: Probe, useValue: probe }],
      }),
      (app) => app.useGlobalInterceptors(new Outer()),
    );
  });

  const { runs, waits, drained, close } = probeFlows(() => ({ running, probe }), GAUGES);

  afterEach(close);

  /** A low request holding `brief`'s only slot, after an earlier one (recent low arrivals). */
  async function lowHolds(): Promise<Call> {
    const first = await runs('/w/low/l0', 'l0');
    probe.pass('l0');
    expect((await first.reply).status).toBe(200);
    return runs('/w/low/l1', 'l1');
  }

  it('an outer timeout during the brief wait: the waiter leaves, no slot is taken', async () => {
    const low = await lowHolds();
    const critical = await waits('brief', '/w/critical/c', { 'x-outer': 'timeout' });
    const answer = await critical.reply;
    expect(answer.status).toBeGreaterThanOrEqual(400);
    await until(() => running.gauge('brief').queued === 0, 'the waiter leaves');
    expect(running.gauge('brief').inFlight).toBe(1);
    probe.pass('l1');
    expect((await low.reply).status).toBe(200);
    await drained();
    expect(probe.entered).toEqual(['l0', 'l1']);
  });

  it('an outer retry of a brief wait: one waiter at a time, served once the slot frees', async () => {
    const low = await lowHolds();
    const critical = await waits('brief', '/w/critical/c', { 'x-outer': 'retry' });
    expect(running.gauge('brief').queued).toBe(1);
    probe.pass('l1');
    await until(() => probe.entered.includes('c'), 'the critical handler runs');
    probe.pass('c');
    expect((await critical.reply).status).toBe(200);
    expect((await low.reply).status).toBe(200);
    await drained();
  });

  it('an outer fallback for a refused request: 200 without Retry-After (a mapped 503 keeps it), nothing held', async () => {
    const holder = await runs('/w/codel/a', 'a');
    const waiters = [1, 2, 3, 4].map((i) => send(running.url, `/w/codel/w${i}`));
    await until(() => running.gauge('codel').queued === 4, 'the queue fills');
    const fallback = await send(running.url, '/w/codel/x', { headers: { 'x-outer': 'fallback' } })
      .reply;
    expect({ status: fallback.status, body: fallback.body }).toEqual({
      status: 200,
      body: 'fallback',
    });
    expect(fallback.headers['retry-after']).toBeUndefined();
    // Mapped to another error answer (a 503 for a gateway): the wait hint still holds.
    const mapped = await send(running.url, '/w/codel/y', { headers: { 'x-outer': 'unavailable' } })
      .reply;
    expect(mapped.status).toBe(503);
    expect(mapped.headers['retry-after']).toBeDefined();
    probe.openAll();
    expect((await holder.reply).status).toBe(200);
    for (const waiter of waiters) expect((await waiter.reply).status).toBe(200);
    await drained();
  });

  it('an outer timeout during a key brief wait: the waiter leaves, its key is forgotten', async () => {
    const first = await runs('/w/key/q0', 'q0', { 'x-tenant': 'quiet' });
    probe.pass('q0');
    expect((await first.reply).status).toBe(200);
    // noisy takes its share, then asks beyond it: the last slot is noisy's or another key's.
    const held = [await runs('/w/key/n1', 'n1', { 'x-tenant': 'noisy' })];
    const n2 = send(running.url, '/w/key/n2', { headers: { 'x-tenant': 'noisy' } });
    let answered = false;
    void n2.reply.then(() => (answered = true));
    await until(() => probe.entered.includes('n2') || answered, 'n2 runs or is refused');
    if (probe.entered.includes('n2')) held.push(n2);
    else {
      expect(json(await n2.reply)).toMatchObject({ reason: 'key-over-share' });
      held.push(await runs('/w/key/b1', 'b1', { 'x-tenant': 'b' }));
    }
    const quiet = await waits('keyed', '/w/key/q', { 'x-tenant': 'c', 'x-outer': 'timeout' });
    expect((await quiet.reply).status).toBeGreaterThanOrEqual(400);
    await until(() => running.gauge('keyed').queued === 0, 'the waiter leaves');
    expect(running.gauge('keyed').inFlight).toBe(2);
    probe.openAll();
    for (const call of held) expect((await call.reply).status).toBe(200);
    await drained();
    expect(probe.entered).not.toContain('q');
  });

  it('a client that leaves a CoDel queue leaves nothing queued, and its handler never runs', async () => {
    const holder = await runs('/w/codel/a', 'a');
    const gone = await waits('codel', '/w/codel/gone');
    const kept = await waits('codel', '/w/codel/kept');
    gone.abort();
    await until(() => running.gauge('codel').queued === 1, 'the waiter leaves');
    probe.pass('a');
    await until(() => probe.entered.includes('kept'), 'the next waiter runs');
    probe.pass('kept');
    expect((await holder.reply).status).toBe(200);
    expect((await kept.reply).status).toBe(200);
    await drained();
    expect(probe.entered).not.toContain('gone');
    expect(running.gauge('codel').aborted).toBe(1);
  });

  it('an inner retry under class @Limited with priorities and keys: each run holds one slot, all freed', async () => {
    const holder = await runs('/inner/hold/h', 'h', { 'x-tenant': 't' });
    const failing = send(running.url, '/inner/fails/f', { headers: { 'x-tenant': 'u' } });
    await until(() => probe.entered.includes('f'), 'the failing handler runs');
    expect(running.gauge('inner').inFlight).toBe(2);
    probe.fail('f', new Error('boom'));
    // The retry's run needs a slot of its own: the freed one.
    await until(() => probe.entered.filter((e) => e === 'f').length === 2, 'the retry runs');
    probe.fail('f', new Error('boom'));
    const answer = await failing.reply;
    expect({ status: answer.status, body: answer.body }).toEqual({
      status: 200,
      body: 'inner-fallback',
    });
    expect(answer.headers['retry-after']).toBeUndefined();
    probe.pass('h');
    expect((await holder.reply).status).toBe(200);
    await drained();
    // The method's @Limited('other') wins over the class's: counted once, in `other` only.
    const other = await runs('/inner/other/o', 'o');
    expect(running.gauge('other').inFlight).toBe(1);
    expect(running.gauge('inner').inFlight).toBe(0);
    probe.pass('o');
    expect((await other.reply).status).toBe(200);
    await drained();
  });
});
