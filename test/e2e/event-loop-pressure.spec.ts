import 'reflect-metadata';
import { Controller, Get } from '@nestjs/common';
import {
  BackpressureModule,
  GaugeConfigError,
  Limited,
  Priority,
  type LoopSampler,
  type LoopWatcher,
} from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { json, send } from './support/http';

/** The event loop as the test says it is. */
class ScriptedLoop implements LoopSampler {
  private watchers: LoopWatcher[] = [];
  watch(watcher: LoopWatcher): () => void {
    this.watchers.push(watcher);
    return () => {
      this.watchers = this.watchers.filter((each) => each !== watcher);
    };
  }
  late(delayMs: number): void {
    for (const watcher of this.watchers) watcher({ delayMs, utilization: 0.5 });
  }
  get watched(): number {
    return this.watchers.length;
  }
}

/** Holds `GET /held` until the test opens it. */
let gate: { open: () => void; opened: Promise<void> };
function newGate(): typeof gate {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

@Controller()
@Limited('api')
class ApiController {
  @Get('held')
  async held() {
    await gate.opened;
    return 'held';
  }

  @Get('critical')
  @Priority('critical')
  critical() {
    return 'critical';
  }

  @Get('normal')
  normal() {
    return 'normal';
  }

  @Get('low')
  @Priority('low')
  low() {
    return 'low';
  }
}

describe.each(PLATFORMS)('event-loop pressure on %s', (platform: Platform) => {
  let loop: ScriptedLoop;
  let running: Running;

  beforeEach(async () => {
    loop = new ScriptedLoop();
    const module = moduleOf({
      imports: [
        BackpressureModule.forRoot({
          gauges: { api: { limit: 5, retryAfterSeconds: 2, eventLoop: { sampler: loop } } },
        }),
      ],
      controllers: [ApiController],
    });
    running = await startApp(platform, module);
  });

  afterEach(async () => {
    await running.close();
  });

  const statuses = async () => {
    const out: Record<string, number> = {};
    for (const level of ['critical', 'normal', 'low']) {
      out[level] = (await send(running.url, `/${level}`).reply).status;
    }
    return out;
  };

  it('sheds low at once and caps normal under what is held, with 429 reason shed-pressure; critical keeps its 200', async () => {
    expect(await statuses()).toEqual({ critical: 200, normal: 200, low: 200 });
    gate = newGate();
    const held = [send(running.url, '/held'), send(running.url, '/held')];
    while (running.gauge('api').inFlight < 2) await new Promise((resolve) => setImmediate(resolve));
    loop.late(100); // far over target: the cap is half the 2 held
    expect(await statuses()).toEqual({ critical: 200, normal: 429, low: 429 });
    const shed = await send(running.url, '/normal').reply;
    expect(shed.headers['retry-after']).toBe('2');
    expect(json(shed)).toStrictEqual({
      statusCode: 429,
      message: 'Too many requests',
      error: 'Too Many Requests',
      reason: 'shed-pressure',
    });
    gate.open();
    expect((await Promise.all(held.map((call) => call.reply))).map((r) => r.status)).toEqual([
      200, 200,
    ]);
    // Nothing held, under the cap of 1: normal is admitted again; low is not until the loop is calm.
    expect(await statuses()).toEqual({ critical: 200, normal: 200, low: 429 });
    for (let i = 0; i < 10; i++) loop.late(0);
    expect(await statuses()).toEqual({ critical: 200, normal: 200, low: 200 });
    expect(running.gauge('api')).toMatchObject({ inFlight: 0, rejected: 4 });
  });

  it('stops watching the loop when the app closes', async () => {
    expect(loop.watched).toBe(1);
    await running.close();
    expect(loop.watched).toBe(0);
    running = { ...running, close: async () => undefined };
  });
});

describe('eventLoop at bootstrap', () => {
  it('refuses a bad eventLoop option, naming the gauge', () => {
    expect(() =>
      BackpressureModule.forRoot({ gauges: { api: { eventLoop: { maxDelayMs: -1 } } } }),
    ).toThrow(
      new GaugeConfigError(
        'Gauge "api": option "eventLoop.maxDelayMs" must be a number of milliseconds above 0, got -1',
      ),
    );
  });
});
