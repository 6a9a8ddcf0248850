import 'reflect-metadata';
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { HealthIndicatorService } from '@nestjs/terminus';
import { GaugeConfigError, GaugeRegistry, type Release } from '../../src';
import {
  GaugeHealthIndicator,
  type BackpressureHealthOptions,
  type GaugeHealthDetails,
} from '../../src/terminus';
import { MemoryServer, memoryInstances } from '../shared-store/support/memory-adapter';

/*
 * The indicator over a real registry and real gauges, with a fake clock: the saturation window
 * is decided by the clock the test moves, never by real time.
 */

class FakeClock {
  at = Date.UTC(2026, 0, 1);
  readonly now = () => this.at;
  advance(ms: number): void {
    this.at += ms;
  }
}

function setup(options: BackpressureHealthOptions = {}, gauges = {}) {
  const clock = new FakeClock();
  const registry = new GaugeRegistry({
    gauges: {
      pdf: { limit: 2 },
      queued: { limit: 1, queue: { size: 5, timeoutMs: 60_000 } },
      ...gauges,
    },
  });
  const indicator = new GaugeHealthIndicator(registry, new HealthIndicatorService(), {
    clock: clock.now,
    ...options,
  });
  return { clock, registry, indicator };
}

type Entry = { status: string } & GaugeHealthDetails;
const entry = (result: Record<string, unknown>, key: string) => result[key] as Entry;

describe('GaugeHealthIndicator: saturation over a window (fake clock)', () => {
  it('is up with the figures while not saturated', async () => {
    const { indicator, registry } = setup();
    const release = registry.get('pdf').acquire() as Release;
    expect(await indicator.isHealthy('pdf')).toEqual({
      pdf: {
        status: 'up',
        inFlight: 1,
        limit: 2,
        queued: 0,
        saturatedSince: null,
        saturatedForMs: 0,
        store: 'memory',
      },
    });
    release();
  });

  it('goes down only once saturated for forMs, and back up as soon as a check sees it free', async () => {
    const { indicator, registry, clock } = setup();
    const pdf = registry.get('pdf');
    const held = [pdf.acquire() as Release, pdf.acquire() as Release];
    const start = clock.at;

    const first = entry(await indicator.isHealthy('pdf', { forMs: 5_000 }), 'pdf');
    expect(first).toMatchObject({ status: 'up', saturatedForMs: 0 });
    expect(first.saturatedSince).toBe(new Date(start).toISOString());

    clock.advance(4_999);
    expect(entry(await indicator.isHealthy('pdf', { forMs: 5_000 }), 'pdf')).toMatchObject({
      status: 'up',
      saturatedForMs: 4_999,
    });

    clock.advance(1);
    const down = entry(await indicator.isHealthy('pdf', { forMs: 5_000 }), 'pdf');
    expect(down).toMatchObject({
      status: 'down',
      reason: 'saturated',
      inFlight: 2,
      limit: 2,
      saturatedForMs: 5_000,
      saturatedSince: new Date(start).toISOString(),
    });
    expect(down.message).toMatch(/Gauge "pdf" has been saturated .* for 5000 ms/);

    held.pop()!();
    clock.advance(1_000);
    expect(entry(await indicator.isHealthy('pdf', { forMs: 5_000 }), 'pdf')).toMatchObject({
      status: 'up',
      saturatedSince: null,
      saturatedForMs: 0,
    });

    // Saturated again: the window starts over.
    held.push(pdf.acquire() as Release);
    clock.advance(1_000);
    expect(entry(await indicator.isHealthy('pdf', { forMs: 5_000 }), 'pdf')).toMatchObject({
      status: 'up',
      saturatedSince: new Date(clock.at).toISOString(),
    });
    for (const release of held) release();
  });

  it('counts refusals since the last check as saturation (a fail-fast gauge frees slots between requests)', async () => {
    const { indicator, registry, clock } = setup({ forMs: 2_000 });
    const pdf = registry.get('pdf');
    const refuseOne = () => {
      const held = [pdf.acquire() as Release, pdf.acquire() as Release];
      expect(() => pdf.acquire()).toThrow();
      for (const release of held) release();
    };

    expect(entry(await indicator.isHealthy('pdf'), 'pdf').status).toBe('up'); // the baseline
    refuseOne();
    clock.advance(1_000);
    expect(entry(await indicator.isHealthy('pdf'), 'pdf')).toMatchObject({
      status: 'up',
      inFlight: 0,
      saturatedForMs: 0,
      saturatedSince: new Date(clock.at).toISOString(),
    });
    refuseOne();
    clock.advance(2_000);
    expect(entry(await indicator.isHealthy('pdf'), 'pdf')).toMatchObject({
      status: 'down',
      inFlight: 0,
      saturatedForMs: 2_000,
    });
    clock.advance(1_000); // no refusal since: calm
    expect(entry(await indicator.isHealthy('pdf'), 'pdf').status).toBe('up');
  });

  it('applies a threshold below full, and a queue that stays full stays saturated', async () => {
    const { indicator, registry, clock } = setup({}, { wide: { limit: 10 } });
    const wide = registry.get('wide');
    const held = Array.from({ length: 7 }, () => wide.acquire() as Release);
    expect(
      entry(await indicator.isHealthy('wide', { saturation: 0.7, forMs: 0 }), 'wide').status,
    ).toBe('down');
    expect(
      entry(await indicator.isHealthy('wide', { saturation: 0.8, forMs: 0 }), 'wide').status,
    ).toBe('up');
    for (const release of held) release();

    const queued = registry.get('queued');
    const first = queued.acquire() as Release;
    const waiting = Promise.resolve(queued.acquire());
    await indicator.isHealthy('queued', { forMs: 1_000 });
    first(); // handed to the waiter: still full
    clock.advance(1_000);
    expect(entry(await indicator.isHealthy('queued', { forMs: 1_000 }), 'queued')).toMatchObject({
      status: 'down',
      inFlight: 1,
      queued: 0,
    });
    (await waiting)();
  });

  it('takes its defaults from the module options, a check overriding them, under a key', async () => {
    const { indicator, registry } = setup({ forMs: 0, saturation: 0.5 });
    const release = registry.get('pdf').acquire() as Release;
    expect(entry(await indicator.isHealthy('pdf'), 'pdf').status).toBe('down');
    const result = await indicator.isHealthy('pdf', { saturation: 1, key: 'pdf-gauge' });
    expect(Object.keys(result)).toEqual(['pdf-gauge']);
    expect(entry(result, 'pdf-gauge').status).toBe('up');
    release();
  });

  it('areHealthy: every pinned gauge (or the ones named), each under its name', async () => {
    const { indicator, registry } = setup({ forMs: 0 });
    registry.onApplicationBootstrap();
    registry.get('tenant-7'); // dynamic: not checked by default
    const release = registry.get('queued').acquire() as Release;
    const all = await indicator.areHealthy();
    expect(Object.keys(all)).toEqual(['pdf', 'queued']);
    expect(entry(all, 'pdf').status).toBe('up');
    expect(entry(all, 'queued').status).toBe('down');
    expect(Object.keys(await indicator.areHealthy(['pdf', 'tenant-7']))).toEqual([
      'pdf',
      'tenant-7',
    ]);
    release();
  });
});

describe('GaugeHealthIndicator: bursts of probes and clock jumps', () => {
  it('a burst of probes cannot end a spell: only a check >= 1 s after the baseline can', async () => {
    const { indicator, registry, clock } = setup({ forMs: 3_000 });
    const pdf = registry.get('pdf');
    const refuseOne = () => {
      const held = [pdf.acquire() as Release, pdf.acquire() as Release];
      expect(() => pdf.acquire()).toThrow();
      for (const release of held) release();
    };
    const check = async () => entry(await indicator.isHealthy('pdf'), 'pdf');

    await check(); // the baseline
    clock.advance(1_000);
    const start = clock.at;
    for (let second = 0; second < 3; second++) {
      refuseOne(); // overloaded all along: a refusal every second, none between the probes
      // A liveness and a readiness probe at once, and a load balancer's 10 ms later.
      for (const offset of [0, 0, 10]) {
        clock.advance(offset);
        expect(await check()).toMatchObject({
          status: 'up',
          saturatedSince: new Date(start).toISOString(),
          saturatedForMs: clock.at - start,
        });
      }
      clock.advance(990);
    }
    refuseOne();
    expect(await check()).toMatchObject({ status: 'down', saturatedForMs: 3_000 });
    clock.advance(999); // calm, but too soon after the baseline to say so
    expect(await check()).toMatchObject({ status: 'down', saturatedForMs: 3_999 });
    clock.advance(1); // 1 s without a refusal: the spell ends
    expect(await check()).toMatchObject({ status: 'up', saturatedSince: null, saturatedForMs: 0 });
    clock.advance(5); // a probe right after: still calm, not a new spell
    expect(await check()).toMatchObject({ saturatedSince: null });
  });

  it('a probe soon after the baseline can start a spell, whose start is that probe', async () => {
    const { indicator, registry, clock } = setup({ forMs: 1_000 });
    const pdf = registry.get('pdf');
    await indicator.isHealthy('pdf');
    const held = [pdf.acquire() as Release, pdf.acquire() as Release];
    clock.advance(100);
    const started = clock.at;
    expect(entry(await indicator.isHealthy('pdf'), 'pdf')).toMatchObject({
      saturatedSince: new Date(started).toISOString(),
    });
    clock.advance(1_000);
    expect(entry(await indicator.isHealthy('pdf'), 'pdf')).toMatchObject({
      status: 'down',
      saturatedForMs: 1_000,
    });
    for (const release of held) release();
  });

  it('a clock that goes back never makes a negative spell', async () => {
    const { indicator, registry, clock } = setup({ forMs: 1_000 });
    const pdf = registry.get('pdf');
    const held = [pdf.acquire() as Release, pdf.acquire() as Release];
    await indicator.isHealthy('pdf');
    clock.advance(-60_000);
    expect(entry(await indicator.isHealthy('pdf'), 'pdf')).toMatchObject({
      status: 'up',
      saturatedForMs: 0,
    });
    for (const release of held) release();
  });

  describe('by default, a monotonic clock: setting the wall clock moves no spell', () => {
    afterEach(() => {
      jest.useRealTimers();
    });

    it.each([
      ['forward', 3_600_000],
      ['back', -3_600_000],
    ])('the wall clock set %s by an hour', async (_way, jump) => {
      jest.useFakeTimers({
        doNotFake: ['performance', 'nextTick', 'setImmediate', 'queueMicrotask'],
      });
      const registry = new GaugeRegistry({ gauges: { pdf: { limit: 1 } } });
      const indicator = new GaugeHealthIndicator(registry, new HealthIndicatorService(), {
        forMs: 60_000,
      });
      const release = registry.get('pdf').acquire() as Release;
      const first = entry(await indicator.isHealthy('pdf'), 'pdf');
      jest.setSystemTime(Date.now() + jump);
      const second = entry(await indicator.isHealthy('pdf'), 'pdf');
      expect(second.status).toBe('up');
      expect(second.saturatedForMs).toBeGreaterThanOrEqual(0);
      expect(second.saturatedForMs).toBeLessThan(60_000);
      expect(second.saturatedSince).toBe(first.saturatedSince);
      release();
    });
  });
});

describe('GaugeHealthIndicator: a shared gauge whose store is down', () => {
  const { instance, closeAll } = memoryInstances();
  afterEach(closeAll);

  it('is down while its store is down (unless checkStore is false), and up once it is back', async () => {
    const { store, connection } = instance(new MemoryServer());
    const registry = new GaugeRegistry({ store, gauges: { shared: { limit: 2 } } });
    const indicator = new GaugeHealthIndicator(registry, new HealthIndicatorService());
    ((await registry.get('shared').acquire()) as Release)(); // connected
    expect(entry(await indicator.isHealthy('shared'), 'shared')).toMatchObject({
      status: 'up',
      store: 'up',
    });

    connection.report(false);
    const down = entry(await indicator.isHealthy('shared'), 'shared');
    expect(down).toMatchObject({ status: 'down', store: 'down', reason: 'store-down' });
    expect(down.message).toBe('Gauge "shared": its store is down');
    expect(
      entry(await indicator.isHealthy('shared', { checkStore: false }), 'shared'),
    ).toMatchObject({ status: 'up', store: 'down' });

    connection.report(true);
    expect(entry(await indicator.isHealthy('shared'), 'shared').status).toBe('up');
  });
});

describe('GaugeHealthIndicator: mistakes are GaugeConfigErrors naming what is wrong', () => {
  it('refuses an unknown gauge, naming the known ones', async () => {
    const { indicator } = setup();
    await expect(indicator.isHealthy('pfd')).rejects.toThrow(GaugeConfigError);
    await expect(indicator.isHealthy('pfd')).rejects.toThrow(
      'GaugeHealthIndicator: no gauge "pfd" (known: pdf, queued)',
    );
    await expect(indicator.areHealthy(['pdf', 'nope'])).rejects.toThrow(/no gauge "nope"/);
  });

  it.each([
    [{ saturation: 0 }, /option "saturation" must be a number in \(0, 1\].*got 0$/],
    [{ saturation: 1.5 }, /option "saturation" .* got 1\.5$/],
    [{ saturation: '0.9' }, /option "saturation" .* got "0\.9"$/],
    [{ forMs: -1 }, /option "forMs" must be a finite number of milliseconds >= 0, got -1$/],
    [{ forMs: Infinity }, /option "forMs" .* got Infinity$/],
    [{ checkStore: 'yes' }, /option "checkStore" must be a boolean, got "yes"$/],
    [{ forMS: 10 }, /unknown option "forMS"/],
    [{ key: '' }, /option "key" must be a non-empty string/],
  ])('refuses the check options %p', async (options, message) => {
    const { indicator } = setup();
    const check = indicator.isHealthy('pdf', options as never);
    await expect(check).rejects.toThrow(GaugeConfigError);
    await expect(indicator.isHealthy('pdf', options as never)).rejects.toThrow(message);
  });

  it('refuses bad module options when it is built', () => {
    expect(() => setup({ saturation: 2 })).toThrow(
      /^BackpressureHealthModule: option "saturation" must be a number in \(0, 1\]/,
    );
    expect(() => setup({ clock: 5 as never })).toThrow(
      'BackpressureHealthModule: option "clock" must be a function returning milliseconds, got 5',
    );
  });
});
