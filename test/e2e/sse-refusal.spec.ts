import 'reflect-metadata';
import {
  Controller,
  Get,
  Injectable,
  Res,
  Sse,
  UseGuards,
  UseInterceptors,
  type CallHandler,
  type CanActivate,
  type ExecutionContext,
  type MessageEvent,
  type NestInterceptor,
} from '@nestjs/common';
import { from, map, mergeMap, type Observable } from 'rxjs';
import { BackpressureModule, Limited, type Release } from '../../src';
import { RedisGaugeStore } from '../../src/redis';
import { Logs } from '../redis/support/helpers';
import { describeWithRedis, REDIS_URL, uniquePrefix } from '../redis/support/redis-env';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { json, send, type Call, type Reply } from './support/http';
import { Probe } from './support/probe';
import { settle, until } from '../support/wait';

// Issue 8, defect 1: a refusal that comes once the response's headers are out (an SSE stream
// commits its headers one macrotask after it is subscribed; a guard may flush them earlier) must
// never throw outside Nest. On Express, setting Retry-After then throws ERR_HTTP_HEADERS_SENT in a
// promise callback: an unhandled rejection that stops the process. Jest (jest-circus) installs its
// own uncaughtException / unhandledRejection handlers on the real process and fails the running
// test with that error, so "the process survives" is checked by the test not failing that way
// (listeners added through the test's `process` are on Jest's sandbox copy and never fire).
//
// Expected: a 429 (with Retry-After) while the headers are unsent; afterwards, for SSE, an `error`
// event carrying the refusal and the end of the stream; for any other response, its end. The
// handler never runs and the gauge is left with nothing held or queued.

const TOO_MANY = { statusCode: 429, message: 'Too many requests', error: 'Too Many Requests' };

/** Sends its headers before the interceptor runs, as a long-poll or streaming guard may. */
@Injectable()
class EarlyHeaders implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const res = context.switchToHttp().getResponse<{ raw?: object }>();
    const raw = (res.raw ?? res) as { flushHeaders(): void };
    raw.flushHeaders();
    return true;
  }
}

/**
 * Awaits a look-up (held by the test as `lookup`) before calling the route, as an auth or tenant
 * interceptor does: an SSE stream's headers are out by the time the gauge is asked.
 */
@Injectable()
class AfterLookup implements NestInterceptor {
  constructor(private readonly probe: Probe) {}
  intercept(_context: ExecutionContext, next: CallHandler) {
    return from(this.probe.enter('lookup')).pipe(mergeMap(() => next.handle()));
  }
}

/** `@Sse()` routes, one per gauge; the handler records that it ran. */
@Controller('sse')
class SseController {
  constructor(private readonly probe: Probe) {}

  private stream(label: string): Observable<MessageEvent> {
    this.probe.entered.push(label);
    return this.probe.events.pipe(map((data) => ({ data })));
  }

  @Sse('fast')
  @Limited('fast')
  fast() {
    return this.stream('fast');
  }

  @Sse('brief')
  @Limited('brief')
  brief() {
    return this.stream('brief');
  }

  @Sse('tight')
  @Limited('tight')
  tight() {
    return this.stream('tight');
  }
}

/** The same routes behind an async outer interceptor. */
@Controller('late')
@UseInterceptors(AfterLookup)
class LateSseController {
  constructor(private readonly probe: Probe) {}

  private stream(label: string): Observable<MessageEvent> {
    this.probe.entered.push(label);
    return this.probe.events.pipe(map((data) => ({ data })));
  }

  @Sse('fast')
  @Limited('fast')
  fast() {
    return this.stream('late fast');
  }

  @Sse('tight')
  @Limited('tight')
  tight() {
    return this.stream('late tight');
  }
}

/** `@Res()` routes whose headers a guard has already sent. */
@Controller('early')
@UseGuards(EarlyHeaders)
class EarlyController {
  constructor(private readonly probe: Probe) {}

  private answer(label: string, res: { raw?: object }) {
    this.probe.entered.push(label);
    ((res.raw ?? res) as { end(body: string): void }).end('ran');
  }

  @Get('fast')
  @Limited('fast')
  fast(@Res() res: { raw?: object }) {
    this.answer('early fast', res);
  }

  @Get('brief')
  @Limited('brief')
  brief(@Res() res: { raw?: object }) {
    this.answer('early brief', res);
  }

  @Get('tight')
  @Limited('tight')
  tight(@Res() res: { raw?: object }) {
    this.answer('early tight', res);
  }
}

/** The call's whole answer, or a readable failure if it never ends (the stream left open). */
async function ended(call: Call, what: string, ms = 3_000): Promise<Reply> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: the response did not end`)), ms);
  });
  try {
    return await Promise.race([call.reply, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Refused before the headers went out: a plain 429 with Retry-After. */
async function expect429(call: Call, what: string): Promise<void> {
  const reply = await ended(call, what);
  expect(reply.status).toBe(429);
  expect(reply.headers['retry-after']).toMatch(/^\d+$/);
  expect(json(reply)).toMatchObject(TOO_MANY);
  expect(Object.keys(json(reply) as object).sort()).toEqual([
    'error',
    'message',
    'reason',
    'statusCode',
  ]);
}

/** Refused once the SSE headers were out: an `error` event with the refusal, then the end. */
async function expectRefusalEvent(call: Call, what: string): Promise<void> {
  const reply = await ended(call, what);
  expect(reply.status).toBe(200);
  expect(reply.headers['content-type']).toMatch(/^text\/event-stream/);
  expect(reply.body).toMatch(/event: error\n(?:id: \d+\n)?data: Too many requests\n/);
}

/** Either form, for a refusal whose timing against the header commit is not up to the test. */
async function expectRefused(call: Call, what: string): Promise<void> {
  const reply = await ended(call, what);
  if (reply.status === 429) {
    expect(json(reply)).toMatchObject(TOO_MANY);
  } else {
    expect(reply.status).toBe(200);
    expect(reply.body).toMatch(/event: error\n(?:id: \d+\n)?data: Too many requests\n/);
  }
}

describe.each(PLATFORMS)('a refusal never throws outside Nest, on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running;
  /** Slots and places the test itself holds, given back before the app closes. */
  let holds: Release[];
  let waits: AbortController[];

  beforeEach(async () => {
    probe = new Probe();
    holds = [];
    waits = [];
    running = await startApp(
      platform,
      moduleOf({
        imports: [
          BackpressureModule.forRoot({
            gauges: {
              fast: { limit: 1 },
              brief: { limit: 1, queue: { size: 2, timeoutMs: 50 } },
              tight: { limit: 1, queue: { size: 1, timeoutMs: 10_000 } },
            },
          }),
        ],
        controllers: [SseController, LateSseController, EarlyController],
        providers: [{ provide: Probe, useValue: probe }, AfterLookup],
      }),
    );
  });

  afterEach(async () => {
    for (const wait of waits) wait.abort();
    for (const release of holds) release();
    probe.passAll();
    await running.close();
  });

  /** Takes gauge `name`'s only slot (and, for `tight`, its only queue place) from the test. */
  function fill(name: string, queueToo = false): void {
    holds.push(running.gauge(name).acquire() as Release);
    if (queueToo) {
      const wait = new AbortController();
      waits.push(wait);
      const place = running.gauge(name).acquire({ signal: wait.signal }) as Promise<Release>;
      place.then((release) => holds.push(release)).catch(() => undefined);
    }
  }

  /** Nothing ran, nothing is left held or queued once the test's own holds are given back. */
  async function expectNothingLeft(): Promise<void> {
    for (const wait of waits.splice(0)) wait.abort();
    for (const release of holds.splice(0)) release();
    await settle();
    expect(probe.entered.filter((label) => label !== 'lookup')).toEqual([]);
    for (const name of ['fast', 'brief', 'tight']) {
      expect(running.gauge(name)).toMatchObject({ inFlight: 0, queued: 0 });
    }
  }

  describe('@Sse()', () => {
    it('fail-fast gauge full: 429 (refused before the headers are out)', async () => {
      fill('fast');
      await expect429(send(running.url, '/sse/fast'), 'fast');
      await expectNothingLeft();
    });

    it('queue full: 429 (refused before the headers are out)', async () => {
      fill('tight', true);
      await until(() => running.gauge('tight').queued === 1, 'the test fills the queue');
      await expect429(send(running.url, '/sse/tight'), 'tight');
      await expectNothingLeft();
    });

    it('queue timeout after the headers are out: an error event, the stream ends', async () => {
      fill('brief');
      const call = send(running.url, '/sse/brief');
      expect(await call.status).toBe(200); // the stream is open while the request waits
      await expectRefusalEvent(call, 'brief');
      expect(running.gauge('brief')).toMatchObject({ timedOut: 1, queued: 0 });
      await expectNothingLeft();
    });

    it('several queue timeouts in a row: each an error event, none throws', async () => {
      fill('brief');
      const calls = [1, 2].map(() => send(running.url, '/sse/brief'));
      for (const [i, call] of calls.entries()) await expectRefusalEvent(call, `brief ${i}`);
      expect(running.gauge('brief')).toMatchObject({ timedOut: 2, queued: 0 });
      await expectNothingLeft();
    });

    it('fail-fast refusal after an async outer interceptor: an error event, the stream ends', async () => {
      fill('fast');
      const call = send(running.url, '/late/fast');
      expect(await call.status).toBe(200);
      probe.pass('lookup');
      await expectRefusalEvent(call, 'late fast');
      expect(running.gauge('fast')).toMatchObject({ rejected: 1 });
      await expectNothingLeft();
    });

    it('queue-full refusal after an async outer interceptor: an error event, the stream ends', async () => {
      fill('tight', true);
      await until(() => running.gauge('tight').queued === 1, 'the test fills the queue');
      const call = send(running.url, '/late/tight');
      expect(await call.status).toBe(200);
      probe.pass('lookup');
      await expectRefusalEvent(call, 'late tight');
      expect(running.gauge('tight')).toMatchObject({ rejected: 1 });
      await expectNothingLeft();
    });

    it('a client that leaves while queued, after the headers are out: no throw, nothing held', async () => {
      fill('tight');
      const call = send(running.url, '/sse/tight');
      expect(await call.status).toBe(200);
      await until(() => running.gauge('tight').queued === 1, 'the request waits');
      call.abort();
      await until(() => running.gauge('tight').aborted === 1, 'it leaves the queue');
      await expectNothingLeft();
    });
  });

  describe('@Res() route whose headers a guard already sent', () => {
    it('fail-fast gauge full: the response ends, the handler does not run', async () => {
      fill('fast');
      const reply = await ended(send(running.url, '/early/fast'), 'early fast');
      expect(reply.status).toBe(200); // the status the guard sent
      expect(reply.body).not.toBe('ran');
      await expectNothingLeft();
    });

    it('queue full: the response ends, the handler does not run', async () => {
      fill('tight', true);
      await until(() => running.gauge('tight').queued === 1, 'the test fills the queue');
      const reply = await ended(send(running.url, '/early/tight'), 'early tight');
      expect(reply.body).not.toBe('ran');
      await expectNothingLeft();
    });

    it('queue timeout: the response ends, the handler does not run', async () => {
      fill('brief');
      const reply = await ended(send(running.url, '/early/brief'), 'early brief');
      expect(reply.body).not.toBe('ran');
      expect(running.gauge('brief')).toMatchObject({ timedOut: 1 });
      await expectNothingLeft();
    });
  });
});

const describeRedis = describeWithRedis();

describeRedis('a refusal of a Redis gauge never throws outside Nest', () => {
  describe.each(PLATFORMS)('on %s', (platform: Platform) => {
    let probe: Probe;
    let running: Running;
    let holds: Release[];

    beforeEach(async () => {
      probe = new Probe();
      holds = [];
      const stores: RedisGaugeStore[] = [];
      const store = () => {
        const made = new RedisGaugeStore({
          redis: REDIS_URL,
          keyPrefix: uniquePrefix('sse-refusal'),
          logger: new Logs(),
        });
        stores.push(made);
        return made;
      };
      running = await startApp(
        platform,
        moduleOf({
          imports: [
            BackpressureModule.forRoot({
              gauges: {
                fast: { limit: 1, store: store() },
                brief: { limit: 1, queue: { size: 2, timeoutMs: 100 }, store: store() },
                tight: { limit: 1, queue: { size: 1, timeoutMs: 10_000 }, store: store() },
              },
            }),
          ],
          controllers: [SseController, LateSseController, EarlyController],
          providers: [{ provide: Probe, useValue: probe }, AfterLookup],
        }),
      );
      // A gauge whose store still connects queues its callers: under load the 100 ms queue
      // timeout could pass before the test's own fill() got its slot.
      await until(() => stores.every((each) => each.state === 'up'), 'the stores are up');
    });

    afterEach(async () => {
      for (const release of holds) release();
      probe.openAll();
      await running.close();
    });

    async function fill(name: string): Promise<void> {
      holds.push(await running.gauge(name).acquire());
    }

    async function expectNothingLeft(): Promise<void> {
      for (const release of holds.splice(0)) release();
      await until(
        () => ['fast', 'brief', 'tight'].every((name) => running.gauge(name).inFlight === 0),
        'every slot is given back',
      );
      await settle();
      expect(probe.entered.filter((label) => label !== 'lookup')).toEqual([]);
      for (const name of ['fast', 'brief', 'tight']) {
        expect(running.gauge(name)).toMatchObject({ inFlight: 0, queued: 0 });
      }
    }

    it('@Sse(), refused at once: a 429 or an error event, the stream ends', async () => {
      await fill('fast');
      for (let i = 0; i < 5; i++) await expectRefused(send(running.url, '/sse/fast'), `fast ${i}`);
      expect(running.gauge('fast')).toMatchObject({ rejected: 5 });
      await expectNothingLeft();
    });

    it('@Sse(), refused at once after the headers are out: an error event, the stream ends', async () => {
      await fill('fast');
      const call = send(running.url, '/late/fast');
      expect(await call.status).toBe(200);
      probe.pass('lookup');
      await expectRefusalEvent(call, 'late fast');
      await expectNothingLeft();
    });

    it('@Sse(), queue timeout: an error event, the stream ends', async () => {
      await fill('brief');
      const call = send(running.url, '/sse/brief');
      expect(await call.status).toBe(200);
      await expectRefusalEvent(call, 'brief');
      expect(running.gauge('brief')).toMatchObject({ timedOut: 1 });
      await expectNothingLeft();
    });

    it('@Res() route with its headers sent, refused at once: the response ends', async () => {
      await fill('fast');
      const reply = await ended(send(running.url, '/early/fast'), 'early fast');
      expect(reply.body).not.toBe('ran');
      await expectNothingLeft();
    });

    it('@Res() route with its headers sent, queue timeout: the response ends', async () => {
      await fill('brief');
      const reply = await ended(send(running.url, '/early/brief'), 'early brief');
      expect(reply.body).not.toBe('ran');
      await expectNothingLeft();
    });
  });
});
