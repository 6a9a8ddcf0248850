import 'reflect-metadata';
import { Controller, Get, Param, type DynamicModule } from '@nestjs/common';
import { BackpressureModule, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { json, send, type Call } from './support/http';
import { Probe } from './support/probe';
import { until } from '../support/wait';

@Controller()
class HeldController {
  constructor(private readonly probe: Probe) {}

  @Get('work/:id')
  @Limited('work')
  async work(@Param('id') id: string) {
    await this.probe.enter(id);
    return { id };
  }

  @Get('patient/:id')
  @Limited('patient')
  async patient(@Param('id') id: string) {
    await this.probe.enter(id);
    return { id };
  }

  @Get('unconfigured/:id')
  @Limited('unconfigured')
  async unconfigured(@Param('id') id: string) {
    await this.probe.enter(id);
    return { id };
  }
}

const TOO_MANY = {
  statusCode: 429,
  message: 'Too many requests',
  error: 'Too Many Requests',
  reason: 'full',
};

describe.each(PLATFORMS)('fail fast on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running | undefined;

  async function start(backpressure: DynamicModule): Promise<Running> {
    probe = new Probe();
    const module = moduleOf({
      imports: [backpressure],
      controllers: [HeldController],
      providers: [{ provide: Probe, useValue: probe }],
    });
    running = await startApp(platform, module);
    return running;
  }

  /** Sends one request per id to `route` and waits until all their handlers hold a slot. */
  async function hold(route: string, ids: string[]): Promise<Call[]> {
    const before = probe.entered.length;
    const calls = ids.map((id) => send(running!.url, `/${route}/${id}`));
    await until(() => probe.entered.length === before + ids.length, `${ids.length} handlers run`);
    return calls;
  }

  afterEach(async () => {
    probe?.openAll();
    await running?.close();
    running = undefined;
  });

  it('turns away exactly the requests beyond the limit, at once, with 429 and Retry-After', async () => {
    const app = await start(BackpressureModule.forRoot({ gauges: { work: { limit: 3 } } }));
    const held = await hold('work', ['a', 'b', 'c']);

    // Answered while the three handlers are still held: nothing waited for a slot.
    const extra = await Promise.all(['d', 'e'].map((id) => send(app.url, `/work/${id}`).reply));
    for (const reply of extra) {
      expect(reply.status).toBe(429);
      expect(reply.headers['retry-after']).toBe('1');
      expect(json(reply)).toStrictEqual(TOO_MANY);
    }
    expect(probe.entered).toEqual(['a', 'b', 'c']);
    expect(app.gauge('work')).toMatchObject({ inFlight: 3, admitted: 3, rejected: 2 });

    ['a', 'b', 'c'].forEach((id) => probe.pass(id));
    expect((await Promise.all(held.map((call) => call.reply))).map((r) => r.status)).toEqual([
      200, 200, 200,
    ]);
    await until(() => app.gauge('work').inFlight === 0, 'all slots are free');

    // Every slot is usable again.
    const again = await hold('work', ['f', 'g', 'h']);
    ['f', 'g', 'h'].forEach((id) => probe.pass(id));
    for (const call of again) expect((await call.reply).status).toBe(200);
  });

  it('sends the configured retryAfterSeconds', async () => {
    const app = await start(
      BackpressureModule.forRoot({ gauges: { patient: { limit: 1, retryAfterSeconds: 7 } } }),
    );
    await hold('patient', ['a']);
    const refused = await send(app.url, '/patient/b').reply;
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('7');
    expect(json(refused)).toStrictEqual(TOO_MANY);
  });

  it.each<[string, number, () => DynamicModule]>([
    ['forRoot()', 10, () => BackpressureModule.forRoot()],
    ['forRoot(25)', 25, () => BackpressureModule.forRoot(25)],
    ['forRoot({ defaultLimit: 4 })', 4, () => BackpressureModule.forRoot({ defaultLimit: 4 })],
  ])('%s gives an unconfigured gauge %i slots', async (_name, limit, backpressure) => {
    const app = await start(backpressure());
    const ids = Array.from({ length: limit }, (_, i) => `r${i}`);
    await hold('unconfigured', ids);
    expect((await send(app.url, '/unconfigured/extra').reply).status).toBe(429);
    expect(app.gauge('unconfigured')).toMatchObject({ limit, inFlight: limit });
  });

  it('forRoot({ defaultLimit, gauges }): a configured gauge keeps its own limit', async () => {
    const app = await start(
      BackpressureModule.forRoot({ defaultLimit: 4, gauges: { work: { limit: 2 } } }),
    );
    await hold('work', ['a', 'b']);
    expect((await send(app.url, '/work/c').reply).status).toBe(429);
    await hold('unconfigured', ['u1', 'u2', 'u3', 'u4']);
    expect((await send(app.url, '/unconfigured/u5').reply).status).toBe(429);
    expect(app.gauge('work').limit).toBe(2);
    expect(app.gauge('unconfigured').limit).toBe(4);
  });
});
