import 'reflect-metadata';
import {
  Controller,
  Get,
  Injectable,
  Param,
  Sse,
  StreamableFile,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
  type MessageEvent,
} from '@nestjs/common';
import { map, Observable } from 'rxjs';
import { BackpressureModule, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send, type Call } from './support/http';
import { Probe } from './support/probe';
import { settle, until } from '../support/wait';

// Issue 8, defect 3: an `async` handler still awaiting when its client leaves is still running:
// its slot stays held until the promise settles, whatever the route returns. An async `@Sse()`
// handler lost its slot as soon as Nest unsubscribed on the disconnect (7 handlers ran at a
// limit of 2). Once the promise settles, what it returned is over too — an SSE stream Nest never
// subscribes, an Observable subscribed then torn down, a StreamableFile never sent — so the slot
// is free then, without waiting for the stream to emit.

/** Handler runs in progress (awaiting, or a stream subscribed), and the most at once. */
class Runs {
  now = 0;
  max = 0;
  start(): void {
    this.max = Math.max(this.max, ++this.now);
  }
  end(): void {
    this.now--;
  }
}

/** Records each request's raw response by its `id`, to see its client leave. */
@Injectable()
class WatchResponse implements CanActivate {
  constructor(private readonly probe: Probe) {}
  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const { id } = http.getRequest<{ params: { id: string } }>().params;
    const res = http.getResponse<{ raw?: object }>();
    this.probe.responses.set(id, (res.raw ?? res) as { closed?: boolean });
    return true;
  }
}

@Controller()
@UseGuards(WatchResponse)
class AsyncController {
  constructor(
    private readonly probe: Probe,
    private readonly runs: Runs,
  ) {}

  /** Awaits the gate `id` as one run. */
  private async held(id: string): Promise<void> {
    this.runs.start();
    try {
      await this.probe.enter(id);
    } finally {
      this.runs.end();
    }
  }

  /** A stream whose subscription is a run; it emits what the test feeds `probe.events`. */
  private stream(): Observable<string> {
    return new Observable<string>((subscriber) => {
      this.runs.start();
      const forward = this.probe.events.subscribe(subscriber);
      return () => {
        forward.unsubscribe();
        this.runs.end();
      };
    });
  }

  @Sse('two/sse/:id')
  @Limited('two')
  async sse(@Param('id') id: string): Promise<Observable<MessageEvent>> {
    await this.held(id);
    return this.stream().pipe(map((data) => ({ data })));
  }

  @Get('two/plain/:id')
  @Limited('two')
  async plain(@Param('id') id: string) {
    await this.held(id);
    return id;
  }

  @Get('two/stream/:id')
  @Limited('two')
  async observable(@Param('id') id: string) {
    await this.held(id);
    return this.stream();
  }

  @Get('two/file/:id')
  @Limited('two')
  async file(@Param('id') id: string) {
    await this.held(id);
    return new StreamableFile(this.probe.body);
  }

  @Sse('line/sse/:id')
  @Limited('line')
  async queuedSse(@Param('id') id: string): Promise<Observable<MessageEvent>> {
    await this.held(id);
    return this.stream().pipe(map((data) => ({ data })));
  }

  @Get('line/plain/:id')
  @Limited('line')
  async queuedPlain(@Param('id') id: string) {
    await this.held(id);
    return id;
  }
}

describe.each(PLATFORMS)(
  'an async handler whose client leaves while it awaits, on %s',
  (platform: Platform) => {
    let probe: Probe;
    let runs: Runs;
    let running: Running;

    beforeEach(async () => {
      probe = new Probe();
      runs = new Runs();
      running = await startApp(
        platform,
        moduleOf({
          imports: [
            BackpressureModule.forRoot({
              gauges: {
                two: { limit: 2 },
                line: { limit: 1, queue: { size: 5, timeoutMs: 10_000 } },
              },
            }),
          ],
          controllers: [AsyncController],
          providers: [
            { provide: Probe, useValue: probe },
            { provide: Runs, useValue: runs },
          ],
        }),
      );
    });

    afterEach(async () => {
      probe.openAll();
      probe.events.complete();
      probe.body.destroy();
      await running.close();
    });

    /** Sends `path` (ending in `/id`), waits until its handler awaits, then drops the client. */
    async function enterThenLeave(path: string, id: string): Promise<Call> {
      const entered = probe.entered.length;
      const call = send(running.url, `${path}/${id}`);
      await until(() => probe.entered.length === entered + 1, `${id} runs`);
      call.abort();
      await until(() => probe.responses.get(id)?.closed === true, `the server sees ${id} leave`);
      return call;
    }

    async function status(path: string): Promise<number> {
      return (await send(running.url, path).reply).status;
    }

    /** Opens every gate: the runs end, and so does every slot, with no event ever sent. */
    async function expectFreedOnceReturned(gauge: 'two' | 'line') {
      probe.passAll();
      await until(() => runs.now === 0, 'the runs end');
      await until(() => running.gauge(gauge).inFlight === 0, 'their slots are free');
      expect(probe.events.observed).toBe(false);
      expect(running.gauge(gauge)).toMatchObject({ inFlight: 0, queued: 0 });
    }

    it('@Sse(): the slot stays held while the handler awaits; newcomers are refused', async () => {
      await enterThenLeave('/two/sse', 'a');
      await enterThenLeave('/two/sse', 'b');
      await settle(); // Nest has unsubscribed on the disconnects: the runs still await
      expect(running.gauge('two').inFlight).toBe(2);

      // Five more SSE clients and a plain GET: none may get in while both runs await.
      for (const id of ['c', 'd', 'e', 'f', 'g']) expect(await status(`/two/sse/${id}`)).toBe(429);
      expect(await status('/two/plain/h')).toBe(429);
      expect(probe.entered).toEqual(['a', 'b']);
      expect(runs.max).toBe(2);

      // The streams returned after the client left are never subscribed: the slots come back.
      await expectFreedOnceReturned('two');
      expect(runs.max).toBe(2);
    });

    it('@Sse() on a queue gauge: a newcomer waits until the abandoned run ends', async () => {
      await enterThenLeave('/line/sse', 'a');
      const next = send(running.url, '/line/plain/b');
      await until(() => running.gauge('line').queued === 1 || probe.entered.length > 1, 'b waits');
      expect(probe.entered).toEqual(['a']);
      expect(running.gauge('line')).toMatchObject({ inFlight: 1, queued: 1 });

      probe.pass('a');
      await until(() => probe.entered.length === 2, 'b runs once a has returned');
      expect(runs.max).toBe(1);
      probe.pass('b');
      expect((await next.reply).status).toBe(200);
      await expectFreedOnceReturned('line');
    });

    it('@Sse(): one run returning frees one slot', async () => {
      await enterThenLeave('/two/sse', 'a');
      await enterThenLeave('/two/sse', 'b');
      await settle();
      expect(running.gauge('two').inFlight).toBe(2);
      probe.pass('a');
      await until(() => running.gauge('two').inFlight === 1, 'a frees its slot');
      const c = send(running.url, '/two/plain/c');
      await until(() => probe.entered.length === 3, 'c runs');
      expect(await status('/two/plain/d')).toBe(429); // b still awaits
      expect(runs.max).toBe(2);
      probe.passAll();
      expect((await c.reply).status).toBe(200);
      await expectFreedOnceReturned('two');
    });

    it('an async Observable: held while it awaits, free once it has returned', async () => {
      await enterThenLeave('/two/stream', 'a');
      await settle();
      expect(running.gauge('two').inFlight).toBe(1);
      const b = send(running.url, '/two/plain/b');
      await until(() => probe.entered.length === 2, 'b runs');
      expect(await status('/two/plain/c')).toBe(429);
      probe.pass('b');
      expect((await b.reply).status).toBe(200);
      expect(running.gauge('two').inFlight).toBe(1); // a still awaits

      // Its stream is for nobody: not kept subscribed until it happens to emit.
      await expectFreedOnceReturned('two');
      expect(runs.max).toBe(2);
    });

    it('an async StreamableFile: held while it awaits, free once it has returned', async () => {
      await enterThenLeave('/two/file', 'a');
      await enterThenLeave('/two/file', 'b');
      await settle();
      expect(running.gauge('two').inFlight).toBe(2);
      expect(await status('/two/plain/c')).toBe(429);
      await expectFreedOnceReturned('two');
      await until(() => probe.body.destroyed, 'the unsent file is destroyed');
      expect(runs.max).toBe(2);
    });
  },
);
