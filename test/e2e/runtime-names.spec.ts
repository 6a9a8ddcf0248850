import 'reflect-metadata';
import { Controller, Get, Query } from '@nestjs/common';
import { BackpressureModule, GaugeRegistry, type Gauge } from '../../src';
import { MAX_RUNTIME_GAUGE_NAME_LENGTH } from '../../src/gauge-lookup.exception';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { get, json, send } from './support/http';
import { Probe } from './support/probe';
import { until } from '../support/wait';

/** A route whose gauge name comes from the client, as `registry.get(param)` routes do. */
@Controller()
class LookupController {
  constructor(
    private readonly registry: GaugeRegistry,
    private readonly probe: Probe,
  ) {}

  @Get('run')
  run(@Query('name') name: string) {
    return this.registry.get(name).process(() => 'ran');
  }

  /** Holds a slot of gauge `name` until the test passes it. */
  @Get('hold')
  hold(@Query('name') name: string) {
    return this.registry.get(name).process(async () => {
      await this.probe.enter(name);
      return 'held';
    });
  }
}

const LONG_CONFIGURED = 'c'.repeat(MAX_RUNTIME_GAUGE_NAME_LENGTH + 10);
const TOO_LONG = 'x'.repeat(MAX_RUNTIME_GAUGE_NAME_LENGTH + 1);

const BAD_NAMES: Array<[string, string, string]> = [
  ['missing', '/run', 'it must be a single string'],
  ['empty', '/run?name=', 'it must not be empty'],
  ['blank', '/run?name=%20%20%09', 'it must not be blank'],
  ['repeated (an array)', '/run?name=a&name=b', 'it must be a single string'],
  ['an object (qs brackets)', '/run?name[a]=b', 'it must be a single string'],
  [
    'over-long',
    `/run?name=${TOO_LONG}`,
    `it must be at most ${MAX_RUNTIME_GAUGE_NAME_LENGTH} characters`,
  ],
];

describe.each(PLATFORMS)('gauge names chosen by clients on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running;
  let registry: GaugeRegistry;

  beforeEach(async () => {
    probe = new Probe();
    const module = moduleOf({
      imports: [
        BackpressureModule.forRoot({
          maxDynamicGauges: 2,
          gauges: { [LONG_CONFIGURED]: { limit: 1 } },
        }),
      ],
      controllers: [LookupController],
      providers: [{ provide: Probe, useValue: probe }],
    });
    running = await startApp(platform, module);
    registry = running.app.get(GaugeRegistry);
  });

  afterEach(async () => {
    probe.openAll();
    await running.close();
  });

  it.each(BAD_NAMES)('name %s: 400, not 500', async (_case, path, message) => {
    const before = registry.list().length;
    const reply = await get(running.url, path);
    expect(reply.status).toBe(400);
    expect(json(reply)).toEqual({
      statusCode: 400,
      message: `Invalid gauge name: ${message}`,
      error: 'Bad Request',
    });
    expect(reply.body).not.toContain('xxxxxxxx'); // the name is never echoed
    expect(registry.list()).toHaveLength(before);
  });

  it('a name of exactly the maximum length, or a longer configured one, is served', async () => {
    const longest = 'y'.repeat(MAX_RUNTIME_GAUGE_NAME_LENGTH);
    expect((await get(running.url, `/run?name=${longest}`)).status).toBe(200);
    expect((await get(running.url, `/run?name=${LONG_CONFIGURED}`)).status).toBe(200);
    expect(registry.get(LONG_CONFIGURED).admitted).toBe(1);
  });

  it('at the cap with every dynamic gauge busy, a new name is a 503 naming the option', async () => {
    const held = [send(running.url, '/hold?name=h1'), send(running.url, '/hold?name=h2')];
    await until(() => probe.entered.length === 2, 'both handlers hold their gauge');

    const refused = await get(running.url, '/run?name=h3');
    expect(refused.status).toBe(503);
    expect(json(refused)).toMatchObject({ statusCode: 503, error: 'Service Unavailable' });
    expect((json(refused) as { message: string }).message).toMatch(
      /cap of 2 gauges created at run time \(option "maxDynamicGauges"\)/,
    );
    // Existing names are still served while the cap is reached (limit 10: one slot is held).
    expect((await get(running.url, '/run?name=h2')).status).toBe(200);

    probe.pass('h1');
    expect((await held[0]!.reply).status).toBe(200);
    expect((await get(running.url, '/run?name=h3')).status).toBe(200);
    expect(registry.has('h1')).toBe(false); // idle: evicted to make room
    expect(registry.has('h2')).toBe(true); // held: kept
    expect(registry.has('h3')).toBe(true);
  });

  it('a held dynamic gauge survives any churn and its name maps to the same gauge', async () => {
    const call = send(running.url, '/hold?name=busy');
    await until(() => probe.entered.length === 1, 'the handler holds gauge "busy"');
    const busy: Gauge = registry.get('busy');
    for (let i = 0; i < 50; i++) {
      expect((await get(running.url, `/run?name=churn-${i}`)).status).toBe(200);
    }
    expect(registry.get('busy')).toBe(busy);
    expect(busy.inFlight).toBe(1);
    expect(registry.list().length).toBeLessThanOrEqual(1 + 2);
    probe.pass('busy');
    expect((await call.reply).status).toBe(200);
    expect(busy.inFlight).toBe(0);
  });
});
