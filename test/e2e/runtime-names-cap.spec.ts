import 'reflect-metadata';
import {
  Controller,
  Get,
  Injectable,
  Logger,
  type OnModuleInit,
  type Provider,
  type Type,
} from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import {
  BackpressureModule,
  GaugeConfigError,
  GaugeExhaustedError,
  GaugeRegistry,
  InjectGauge,
  Limited,
  PressureGauge,
  type BackpressureModuleOptions,
  type Gauge,
  type GaugeStore,
  type Release,
  type ResolvedGaugeOptions,
} from '../../src';
import {
  GaugeCapacityException,
  InvalidGaugeNameException,
} from '../../src/gauge-lookup.exception';
import { flush } from '../support/wait';

/** A gauge whose load the test sets by hand, and that counts how often it was closed. */
class FakeGauge extends PressureGauge {
  fakeInFlight = 0;
  fakeQueued = 0;
  closes = 0;
  closeFails: 'no' | 'throws' | 'rejects' | 'rejects-unprintable' = 'no';

  override get inFlight() {
    return this.fakeInFlight || super.inFlight;
  }
  override get queued() {
    return this.fakeQueued || super.queued;
  }
  override close(): void {
    this.closes++;
    super.close();
    if (this.closeFails === 'throws') throw new Error('close failed');
    if (this.closeFails === 'rejects') return Promise.reject(new Error('close failed')) as never;
    // A value `String()` cannot render (no prototype): logging it must not throw in turn.
    if (this.closeFails === 'rejects-unprintable') {
      return Promise.reject(Object.create(null) as Error) as never;
    }
  }
}

class FakeStore implements GaugeStore {
  readonly gauges = new Map<string, FakeGauge>();
  createGauge(options: ResolvedGaugeOptions): FakeGauge {
    const gauge = new FakeGauge(options);
    this.gauges.set(options.name, gauge);
    return gauge;
  }
}

@Controller()
class RoutesController {
  @Get()
  @Limited('limited-route')
  list() {}
}

@Injectable()
class UsesGauges implements OnModuleInit {
  bootGauge?: Gauge;
  constructor(
    @InjectGauge('injected-gauge') readonly injected: Gauge,
    private readonly registry: GaugeRegistry,
  ) {}
  onModuleInit() {
    this.bootGauge = this.registry.get('looked-up-at-boot');
  }
}

let app: TestingModule | undefined;

async function start(
  options: BackpressureModuleOptions,
  extra: { controllers?: Type[]; providers?: Provider[] } = {},
): Promise<GaugeRegistry> {
  app = await Test.createTestingModule({
    imports: [BackpressureModule.forRoot(options)],
    ...extra,
  }).compile();
  await app.init();
  return app.get(GaugeRegistry);
}

afterEach(async () => {
  await app?.close();
  app = undefined;
});

beforeAll(() => Logger.overrideLogger(false));

describe('gauges created at run time are bounded by maxDynamicGauges', () => {
  it('100k distinct names keep at most the default 1000 dynamic gauges', async () => {
    const registry = await start({});
    const pinned = registry.list().length;
    let most = 0;
    for (let i = 0; i < 100_000; i++) {
      registry.get(`name-${i}`);
      if (i % 500 === 0) most = Math.max(most, registry.list().length - pinned);
    }
    most = Math.max(most, registry.list().length - pinned);
    expect(most).toBeLessThanOrEqual(1000);
    expect(most).toBeGreaterThan(800); // evicted in batches, not emptied
    expect(registry.has('name-0')).toBe(false);
    expect(registry.has('name-99999')).toBe(true);
  });

  it('never evicts a gauge with a slot held, nor one with a caller queued', async () => {
    const store = new FakeStore();
    const registry = await start({ store, maxDynamicGauges: 10 });
    const pinned = registry.list().length; // @InjectGauge('injected-gauge') of this file
    const held = registry.get('held');
    const release = held.acquire() as Release;
    const queued = registry.get('queued') as FakeGauge;
    queued.fakeQueued = 1;

    for (let i = 0; i < 100_000; i++) {
      registry.get(`churn-${i}`);
      if (i % 10_000 === 0) expect(registry.get('held')).toBe(held);
    }
    expect(registry.get('held')).toBe(held);
    expect(registry.get('queued')).toBe(queued);
    expect(registry.list().length - pinned).toBeLessThanOrEqual(10);

    release();
    queued.fakeQueued = 0;
    for (let i = 0; i < 20; i++) registry.get(`later-${i}`);
    expect(registry.has('held')).toBe(false);
    expect(registry.has('queued')).toBe(false);
    expect(store.gauges.get('held')!.closes).toBe(1);
  });

  it('never evicts configured, @Limited, @InjectGauge or bootstrap-time gauges', async () => {
    const registry = await start(
      { maxDynamicGauges: 1, gauges: { configured: { limit: 2 } } },
      { controllers: [RoutesController], providers: [UsesGauges] },
    );
    const names = ['configured', 'limited-route', 'injected-gauge', 'looked-up-at-boot'];
    const before = names.map((name) => registry.get(name));
    const uses = app!.get(UsesGauges);
    expect(uses.injected).toBe(before[2]);
    expect(uses.bootGauge).toBe(before[3]);

    for (let i = 0; i < 1000; i++) registry.get(`churn-${i}`);
    expect(names.map((name) => registry.get(name))).toEqual(before);
    names.forEach((name, i) => expect(registry.get(name)).toBe(before[i]));
    expect(registry.list()).toHaveLength(names.length + 1);
  });

  it('evicts the least recently used idle gauges, a tenth of the cap at a time, closing them', async () => {
    const store = new FakeStore();
    const registry = await start({ store, maxDynamicGauges: 20 });
    for (let i = 0; i < 20; i++) registry.get(`d${i}`);
    registry.get('d0'); // used again: now the most recent
    registry.get('d20');
    const kept = Array.from({ length: 21 }, (_, i) => `d${i}`).filter((n) => registry.has(n));
    expect(kept).toEqual(['d0', ...Array.from({ length: 18 }, (_, i) => `d${i + 3}`)]);
    expect(store.gauges.get('d1')!.closes).toBe(1);
    expect(store.gauges.get('d2')!.closes).toBe(1);
    expect(store.gauges.get('d0')!.closes).toBe(0);
    expect(registry.list().map((g) => g.name)).not.toContain('d1');
  });

  it('a gauge whose close throws or rejects is still evicted, and get() still answers', async () => {
    const store = new FakeStore();
    const registry = await start({ store, maxDynamicGauges: 2 });
    (registry.get('throws') as FakeGauge).closeFails = 'throws';
    (registry.get('rejects') as FakeGauge).closeFails = 'rejects';
    expect(registry.get('third').name).toBe('third');
    expect(registry.get('fourth').name).toBe('fourth');
    expect(registry.has('throws') || registry.has('rejects')).toBe(false);
    (registry.get('odd') as FakeGauge).closeFails = 'rejects-unprintable';
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      registry.get('fifth');
      registry.get('sixth');
      expect(registry.has('odd')).toBe(false);
      await flush(); // a rejection would surface here
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });

  it('a reference kept to an evicted gauge refuses; looking the name up again works', async () => {
    const registry = await start({ maxDynamicGauges: 1 });
    const stale = registry.get('kept');
    registry.get('other');
    expect(() => stale.acquire()).toThrow(GaugeExhaustedError);
    const fresh = registry.get('kept');
    expect(fresh).not.toBe(stale);
    (fresh.acquire() as Release)();
  });

  it('with every dynamic gauge busy it refuses a new name with a 503, and creates nothing', async () => {
    const registry = await start({ maxDynamicGauges: 2 });
    const releases = ['a', 'b'].map((name) => registry.get(name).acquire() as Release);
    const refusal = (() => {
      try {
        registry.get('c');
      } catch (error) {
        return error;
      }
    })();
    expect(refusal).toBeInstanceOf(GaugeCapacityException);
    expect((refusal as GaugeCapacityException).getStatus()).toBe(503);
    expect((refusal as GaugeCapacityException).maxDynamicGauges).toBe(2);
    expect(registry.has('c')).toBe(false);
    releases[0]!();
    expect(registry.get('c').name).toBe('c');
    expect(registry.has('a')).toBe(false);
  });

  it('maxDynamicGauges 0 allows no name first used after bootstrap', async () => {
    const registry = await start({ maxDynamicGauges: 0 }, { controllers: [RoutesController] });
    expect(registry.get('limited-route').name).toBe('limited-route');
    expect(() => registry.get('new')).toThrow(GaugeCapacityException);
  });
});

describe('bad names given to registry.get', () => {
  it.each<[string, unknown, string]>([
    ['undefined (a missing parameter)', undefined, 'not-a-string'],
    ['an array (a repeated parameter)', ['a', 'b'], 'not-a-string'],
    ['an object', { name: 'a' }, 'not-a-string'],
    ['a number', 42, 'not-a-string'],
    ['empty', '', 'empty'],
    ['blank', '  \t\n', 'blank'],
    ['257 characters', 'z'.repeat(257), 'too-long'],
  ])('after bootstrap, a name that is %s is a 400', async (_case, name, reason) => {
    const registry = await start({});
    const before = registry.list().length;
    let caught: unknown;
    try {
      registry.get(name as string);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidGaugeNameException);
    expect(caught).toMatchObject({ reason });
    expect((caught as InvalidGaugeNameException).getStatus()).toBe(400);
    expect(registry.list()).toHaveLength(before);
  });

  it('while the app starts, a bad name is a GaugeConfigError (a bug, not a request)', async () => {
    const compiled = await Test.createTestingModule({
      imports: [BackpressureModule.forRoot()],
    }).compile();
    try {
      expect(() => compiled.get(GaugeRegistry).get('')).toThrow(GaugeConfigError);
    } finally {
      await compiled.close();
    }
  });
});
