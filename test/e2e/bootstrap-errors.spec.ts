import 'reflect-metadata';
import { Controller, Get, Injectable, Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import {
  BackpressureModule,
  GaugeConfigError,
  InjectGauge,
  Limited,
  MemoryGaugeStore,
  type BackpressureModuleOptions,
} from '../../src';
import { moduleOf } from './support/apps';

@Controller()
class AnyController {
  @Get()
  @Limited('api')
  get() {
    return 'ok';
  }
}

/** Declares the module: may throw at once (forRoot) or only when Nest builds it (a factory). */
type Declare = () => DynamicModule;

/** Options as a typo, a bad env var or plain JavaScript would produce them; types would not allow them. */
const forRoot =
  (options: unknown): Declare =>
  () =>
    BackpressureModule.forRoot(options as BackpressureModuleOptions);
const gauge = (options: unknown): Declare => forRoot({ gauges: { api: options } });
const fromFactory =
  (value: unknown): Declare =>
  () =>
    BackpressureModule.forRootAsync({ useFactory: () => value as BackpressureModuleOptions });
const forRootAsync =
  (options: unknown): Declare =>
  () =>
    BackpressureModule.forRootAsync(
      options as Parameters<typeof BackpressureModule.forRootAsync>[0],
    );

@Injectable()
class NoMethodConfig {}

@Injectable()
class NumberConfig {
  createBackpressureOptions() {
    return 25;
  }
}

@Injectable()
class TypoConfig {
  createBackpressureOptions() {
    return { gauge: { api: { limit: 1 } } };
  }
}

@Module({ providers: [TypoConfig], exports: [TypoConfig] })
class TypoConfigModule {}

const FACTORY_MUST = /forRootAsync\(\): the value useFactory returned must be an options object/;

const BAD_OPTIONS: Array<[string, Declare, RegExp]> = [
  // one gauge's options
  ['limit 0', gauge({ limit: 0 }), /Gauge "api": option "limit".*got 0$/],
  ['limit -1', gauge({ limit: -1 }), /Gauge "api": option "limit".*got -1$/],
  ['limit NaN', gauge({ limit: NaN }), /Gauge "api": option "limit".*got NaN$/],
  ['limit Infinity', gauge({ limit: Infinity }), /Gauge "api": option "limit".*got Infinity$/],
  ['limit 1.5', gauge({ limit: 1.5 }), /Gauge "api": option "limit".*got 1.5$/],
  ['limit "5"', gauge({ limit: '5' }), /Gauge "api": option "limit".*got "5"$/],
  ['limit null', gauge({ limit: null }), /Gauge "api": option "limit".*got null$/],
  ['limit true', gauge({ limit: true }), /Gauge "api": option "limit".*got true$/],
  [
    'unknown option',
    gauge({ limt: 5 }),
    /Gauge "api": unknown option "limt" \(known: .*store, priority, onRefusal\)/,
  ],
  ['options 5', gauge(5), /Gauge "api": options must be an object.*got 5$/],
  ['options null', gauge(null), /Gauge "api": options must be an object.*got null$/],
  ['options []', gauge([]), /Gauge "api": options must be an object.*got \[\]$/],
  ['options a Map', gauge(new Map()), /Gauge "api": options must be .*got an instance of Map$/],
  ['queue []', gauge({ queue: [] }), /Gauge "api": option "queue" must be .*got \[\]$/],
  ['queue null', gauge({ queue: null }), /Gauge "api": option "queue" must be .*got null$/],
  ['queue "10"', gauge({ queue: '10' }), /Gauge "api": option "queue" must be .*got "10"$/],
  [
    'negative queue size',
    gauge({ queue: { size: -1, timeoutMs: 100 } }),
    /Gauge "api": option "queue.size".*got -1$/,
  ],
  [
    'queue size NaN',
    gauge({ queue: { size: NaN, timeoutMs: 100 } }),
    /Gauge "api": option "queue.size".*got NaN$/,
  ],
  [
    'negative queue timeout',
    gauge({ queue: { size: 1, timeoutMs: -5 } }),
    /Gauge "api": option "queue.timeoutMs".*got -5$/,
  ],
  [
    'queue timeout Infinity',
    gauge({ queue: { size: 1, timeoutMs: Infinity } }),
    /Gauge "api": option "queue.timeoutMs".*got Infinity$/,
  ],
  [
    'queue timeout missing',
    gauge({ queue: { size: 1 } }),
    /Gauge "api": option "queue.timeoutMs".*got undefined$/,
  ],
  [
    'nested typo queue.timeout',
    gauge({ queue: { size: 1, timeout: 100 } }),
    /Gauge "api": unknown option "queue.timeout" \(known: queue.size, queue.timeoutMs, queue.discipline, queue.targetMs, queue.intervalMs\)/,
  ],
  ['retryAfterSeconds -1', gauge({ retryAfterSeconds: -1 }), /"retryAfterSeconds".*got -1$/],
  ['retryAfterSeconds "2"', gauge({ retryAfterSeconds: '2' }), /"retryAfterSeconds".*got "2"$/],
  ['retryAfterSeconds null', gauge({ retryAfterSeconds: null }), /"retryAfterSeconds".*got null$/],
  [
    'whenStoreDown "fail-open"',
    gauge({ whenStoreDown: 'fail-open' }),
    /Gauge "api": option "whenStoreDown" must be .*got "fail-open"$/,
  ],
  ['whenStoreDown null', gauge({ whenStoreDown: null }), /"whenStoreDown" must be .*got null$/],
  ['whenStoreDown []', gauge({ whenStoreDown: [] }), /"whenStoreDown" must be .*got \[\]$/],
  [
    'whenStoreDown localLimit 0',
    gauge({ whenStoreDown: { localLimit: 0 } }),
    /Gauge "api": option "whenStoreDown.localLimit".*got 0$/,
  ],
  [
    'whenStoreDown typo',
    gauge({ whenStoreDown: { localLimt: 2 } }),
    /Gauge "api": unknown option "whenStoreDown.localLimt"/,
  ],
  [
    'gauge store {}',
    gauge({ store: {} }),
    /Gauge "api": option "store" must be a GaugeStore.*\{\}$/,
  ],
  [
    'gauge store a URL',
    gauge({ store: 'redis://localhost:6379' }),
    /Gauge "api": option "store" .*RedisGaugeStore.*got "redis:\/\/localhost:6379"$/,
  ],
  ['gauge store null', gauge({ store: null }), /Gauge "api": option "store" .*got null$/],
  // priorityWaitMs, on a gauge named x
  [
    'priorityWaitMs -1',
    forRoot({ gauges: { x: { limit: 2, priorityWaitMs: -1 } } }),
    /^Gauge "x": option "priorityWaitMs" must be a number of milliseconds from 0 to 2147483647, got -1$/,
  ],
  [
    'priorityWaitMs NaN',
    forRoot({ gauges: { x: { limit: 2, priorityWaitMs: NaN } } }),
    /^Gauge "x": option "priorityWaitMs" .*got NaN$/,
  ],
  [
    'priorityWaitMs "25"',
    forRoot({ gauges: { x: { limit: 2, priorityWaitMs: '25' } } }),
    /^Gauge "x": option "priorityWaitMs" .*got "25"$/,
  ],
  [
    'priorityWaitMs with a queue',
    forRoot({ gauges: { x: { limit: 2, queue: { size: 1, timeoutMs: 10 }, priorityWaitMs: 5 } } }),
    /^Gauge "x": option "priorityWaitMs" is for a fail-fast gauge, but "queue.size" is 1 .*set its size to 0.*got 5$/,
  ],
  [
    'factory priorityWaitMs -1',
    fromFactory({ gauges: { x: { limit: 2, priorityWaitMs: -1 } } }),
    /^Gauge "x": option "priorityWaitMs" must be a number of milliseconds .*got -1$/,
  ],
  [
    'async factory priorityWaitMs Infinity',
    forRootAsync({
      useFactory: async () => ({ gauges: { x: { limit: 2, priorityWaitMs: Infinity } } }),
    }),
    /^Gauge "x": option "priorityWaitMs" .*got Infinity$/,
  ],
  // the gauges map
  ['gauges "abc"', forRoot({ gauges: 'abc' }), /option "gauges" must be an object .*got "abc"$/],
  ['gauges []', forRoot({ gauges: [] }), /option "gauges" must be an object .*got \[\]$/],
  ['gauges null', forRoot({ gauges: null }), /option "gauges" must be an object .*got null$/],
  [
    'gauges a Map',
    forRoot({ gauges: new Map([['api', { limit: 1 }]]) }),
    /option "gauges" must be an object .*got an instance of Map$/,
  ],
  [
    'gauge named ""',
    forRoot({ gauges: { '': { limit: 1 } } }),
    /option "gauges": a gauge name must be a non-empty string, got ""$/,
  ],
  [
    'gauge named "  "',
    forRoot({ gauges: { '  ': { limit: 1 } } }),
    /option "gauges": a gauge name must be a non-empty string, got " {2}"$/,
  ],
  // module level
  ['defaultLimit 0', forRoot({ defaultLimit: 0 }), /option "defaultLimit".*got 0$/],
  ['defaultLimit "10"', forRoot({ defaultLimit: '10' }), /option "defaultLimit".*got "10"$/],
  ['defaultLimit null', forRoot({ defaultLimit: null }), /option "defaultLimit".*got null$/],
  ['forRoot(NaN)', forRoot(NaN), /option "defaultLimit".*got NaN$/],
  ['forRoot(Infinity)', forRoot(Infinity), /option "defaultLimit".*got Infinity$/],
  ['forRoot("10")', forRoot('10'), /forRoot\(\) takes a default limit .*got "10"$/],
  ['forRoot(null)', forRoot(null), /forRoot\(\) takes a default limit .*got null$/],
  ['forRoot(true)', forRoot(true), /forRoot\(\) takes a default limit .*got true$/],
  ['forRoot([])', forRoot([]), /forRoot\(\) takes a default limit .*got \[\]$/],
  ['forRoot(a Map)', forRoot(new Map()), /forRoot\(\) takes .*got an instance of Map$/],
  ['forRoot(a function)', forRoot(function options() {}), /got function options$/],
  [
    'typo defaultLimt',
    forRoot({ defaultLimt: 5 }),
    /BackpressureModule: unknown option "defaultLimt" \(known: defaultLimit, gauges, store, maxDynamicGauges, unknownGauges, onRefusal, openApi, isGlobal, errorFilter\)/,
  ],
  ['typo gauge:', forRoot({ gauge: { api: {} } }), /BackpressureModule: unknown option "gauge"/],
  [
    'isGlobal "yes"',
    forRoot({ isGlobal: 'yes' }),
    /option "isGlobal" must be a boolean, got "yes"$/,
  ],
  ['store {}', forRoot({ store: {} }), /BackpressureModule: option "store" must be a GaugeStore/],
  [
    'store a URL',
    forRoot({ store: 'redis://localhost:6379' }),
    /option "store" .*new RedisGaugeStore\(\{ redis: url \}\).*got "redis:\/\/localhost:6379"$/,
  ],
  ['store null', forRoot({ store: null }), /option "store" must be a GaugeStore.*got null$/],
  [
    'store the class, not an instance',
    forRoot({ store: MemoryGaugeStore }),
    /option "store" .*pass an instance.*got class MemoryGaugeStore$/,
  ],
  [
    'store.createGauge not a function',
    forRoot({ store: { createGauge: 'yes' } }),
    /option "store" must be a GaugeStore.*got \{"createGauge":"yes"\}$/,
  ],
  [
    'store.close not a function',
    forRoot({ store: { createGauge: () => null, close: 1 } }),
    /option "store": the store's "close" must be a method, got 1$/,
  ],
  ['maxDynamicGauges -1', forRoot({ maxDynamicGauges: -1 }), /"maxDynamicGauges".*got -1$/],
  ['maxDynamicGauges 1.5', forRoot({ maxDynamicGauges: 1.5 }), /"maxDynamicGauges".*got 1.5$/],
  ['maxDynamicGauges "10"', forRoot({ maxDynamicGauges: '10' }), /"maxDynamicGauges".*got "10"$/],
  ['maxDynamicGauges NaN', forRoot({ maxDynamicGauges: NaN }), /"maxDynamicGauges".*got NaN$/],
  ['maxDynamicGauges Infinity', forRoot({ maxDynamicGauges: Infinity }), /got Infinity$/],
  ['maxDynamicGauges null', forRoot({ maxDynamicGauges: null }), /"maxDynamicGauges".*got null$/],
  [
    'onRefusal not a function',
    forRoot({ onRefusal: { status: 503 } }),
    /^BackpressureModule: option "onRefusal" must be a function \(refusal, context\) => RefusalShape \| void, got \{"status":503\}$/,
  ],
  [
    "a gauge's onRefusal not a function",
    gauge({ onRefusal: 'log' }),
    /^Gauge "api": option "onRefusal" must be a function .*got "log"$/,
  ],
  [
    'factory onRefusal null',
    fromFactory({ gauges: { api: { onRefusal: null } } }),
    /Gauge "api": option "onRefusal" must be a function .*got null$/,
  ],
  [
    'openApi "no"',
    forRoot({ openApi: 'no' }),
    /^BackpressureModule: option "openApi" must be a boolean, got "no"$/,
  ],
  ['factory openApi 0', fromFactory({ openApi: 0 }), /option "openApi" must be a boolean, got 0$/],
  // what a forRootAsync factory returns
  ['factory returns 25', fromFactory(25), new RegExp(`${FACTORY_MUST.source}.*got 25$`)],
  ['factory returns null', fromFactory(null), new RegExp(`${FACTORY_MUST.source}.*got null$`)],
  ['factory returns undefined', fromFactory(undefined), /useFactory returned .*got undefined$/],
  ['factory returns "abc"', fromFactory('abc'), /useFactory returned .*got "abc"$/],
  ['factory returns []', fromFactory([]), /useFactory returned .*got \[\]$/],
  ['factory typo', fromFactory({ defaultLimt: 1 }), /unknown option "defaultLimt"/],
  [
    'factory returns isGlobal',
    fromFactory({ isGlobal: true }),
    /option "isGlobal" \(got true\) is not a gauge option: pass it to forRoot\(\{ isGlobal \}\) or forRootAsync/,
  ],
  ['factory store {}', fromFactory({ store: {} }), /option "store" must be a GaugeStore.*\{\}$/],
  ['factory gauges "abc"', fromFactory({ gauges: 'abc' }), /option "gauges" .*got "abc"$/],
  [
    'factory limit 0',
    fromFactory({ gauges: { api: { limit: 0 } } }),
    /Gauge "api": option "limit"/,
  ],
  [
    'async factory resolves 25',
    forRootAsync({ useFactory: async () => 25 }),
    new RegExp(`${FACTORY_MUST.source}.*got 25$`),
  ],
  [
    'useClass without createBackpressureOptions',
    forRootAsync({ useClass: NoMethodConfig }),
    /forRootAsync\(\): useClass NoMethodConfig has no createBackpressureOptions\(\) method/,
  ],
  [
    'useClass returning 25',
    forRootAsync({ useClass: NumberConfig }),
    /the value useClass NumberConfig.createBackpressureOptions\(\) returned must be an options object .*got 25$/,
  ],
  [
    'useExisting returning a typo',
    forRootAsync({ imports: [TypoConfigModule], useExisting: TypoConfig }),
    /BackpressureModule: unknown option "gauge"/,
  ],
  // forRootAsync's own argument
  ['forRootAsync(null)', forRootAsync(null), /forRootAsync\(\) takes \{ useFactory.*got null$/],
  [
    'forRootAsync({})',
    forRootAsync({}),
    /exactly one of useFactory, useClass, useExisting, got none/,
  ],
  [
    'forRootAsync typo useFactroy',
    forRootAsync({ useFactroy: () => ({}) }),
    /forRootAsync\(\): unknown option "useFactroy"/,
  ],
  [
    'forRootAsync useFactory 5',
    forRootAsync({ useFactory: 5 }),
    /option "useFactory" must be a function, got 5$/,
  ],
  [
    'forRootAsync two sources',
    forRootAsync({ useFactory: () => ({}), useClass: NumberConfig }),
    /exactly one of .*got useFactory and useClass$/,
  ],
  [
    'forRootAsync isGlobal "no"',
    forRootAsync({ useFactory: () => ({}), isGlobal: 'no' }),
    /option "isGlobal" must be a boolean, got "no"$/,
  ],
  [
    'forRootAsync inject not an array',
    forRootAsync({ useFactory: () => ({}), inject: 'Config' }),
    /option "inject" must be an array, got "Config"$/,
  ],
];

describe('bad options fail the bootstrap, not the first request', () => {
  it.each(BAD_OPTIONS)('%s: compile() rejects', async (_case, declare, message) => {
    const compiling = (async () =>
      Test.createTestingModule({ imports: [declare()], controllers: [AnyController] }).compile())();
    await expect(compiling).rejects.toThrow(GaugeConfigError);
    await expect(compiling).rejects.toThrow(message);
  });

  it.each(BAD_OPTIONS)('%s: NestFactory.create rejects', async (_case, declare, message) => {
    const creating = (async () => {
      const module = moduleOf({ imports: [declare()], controllers: [AnyController] });
      return NestFactory.create(module, { logger: false, abortOnError: false });
    })();
    await expect(creating).rejects.toThrow(GaugeConfigError);
    await expect(creating).rejects.toThrow(message);
  });

  it.each<[string, () => DynamicModule]>([
    ['forRoot(0)', () => BackpressureModule.forRoot(0)],
    ['forRoot(-1)', () => BackpressureModule.forRoot(-1)],
    ['forRoot(2.5)', () => BackpressureModule.forRoot(2.5)],
  ])('%s throws when the module is declared', (_case, declare) => {
    expect(declare).toThrow(/BackpressureModule: option "defaultLimit"/);
  });

  it('forRoot checks an options object where the module is declared, too', () => {
    expect(forRoot({ store: {} })).toThrow(GaugeConfigError);
    expect(gauge({ limit: 0 })).toThrow(/Gauge "api": option "limit"/);
  });

  it("a factory's message does not contradict itself (no number is accepted from a factory)", async () => {
    const error = await Test.createTestingModule({ imports: [fromFactory(25)()] })
      .compile()
      .then(
        () => new Error('compiled'),
        (caught: unknown) => caught as Error,
      );
    expect(error.message).toContain(
      '{ defaultLimit?, gauges?, store?, maxDynamicGauges?, unknownGauges?, onRefusal?, openApi? }',
    );
    expect(error.message).not.toMatch(/or a number/);
  });

  it('shows a huge value cut short, and never the password of a URL', () => {
    const long = forRoot({ gauges: 'x'.repeat(100_000) });
    expect(long).toThrow(/\(100002 chars\)$/);
    try {
      long();
    } catch (error) {
      expect((error as Error).message.length).toBeLessThan(300);
    }
    const url = forRoot({ store: 'redis://admin:s3cret@cache:6379' });
    expect(url).toThrow(/got "redis:\/\/\*\*\*@cache:6379"$/);
    expect(url).not.toThrow(/s3cret/);
  });
});

describe('good options still boot', () => {
  it.each<[string, () => DynamicModule]>([
    ['forRoot()', () => BackpressureModule.forRoot()],
    ['forRoot(undefined)', () => BackpressureModule.forRoot(undefined)],
    ['forRoot({ isGlobal: false })', () => BackpressureModule.forRoot({ isGlobal: false })],
    ['explicit undefined options', () => BackpressureModule.forRoot({ defaultLimit: undefined })],
    ['maxDynamicGauges 0', () => BackpressureModule.forRoot({ maxDynamicGauges: 0 })],
    [
      'Object.create(null) options',
      () => BackpressureModule.forRoot(Object.assign(Object.create(null), { defaultLimit: 2 })),
    ],
    [
      'priorityWaitMs 0 and a positive one',
      () =>
        BackpressureModule.forRoot({
          gauges: { x: { limit: 2, priorityWaitMs: 0 }, y: { limit: 2, priorityWaitMs: 25 } },
        }),
    ],
    [
      'priorityWaitMs with a queue of size 0 (a fail-fast gauge)',
      () =>
        BackpressureModule.forRoot({
          gauges: { x: { limit: 2, queue: { size: 0, timeoutMs: 100 }, priorityWaitMs: 25 } },
        }),
    ],
    [
      'priorityWaitMs with a queue of size 0 from a factory',
      () =>
        BackpressureModule.forRootAsync({
          useFactory: () => ({
            gauges: { x: { limit: 2, queue: { size: 0, timeoutMs: 100 }, priorityWaitMs: 0 } },
          }),
        }),
    ],
    [
      'a per-gauge store instance',
      () => BackpressureModule.forRoot({ gauges: { api: { store: new MemoryGaugeStore() } } }),
    ],
  ])('%s', async (_case, declare) => {
    const app = await Test.createTestingModule({
      imports: [declare()],
      controllers: [AnyController],
    }).compile();
    await app.close();
  });
});

describe('bad gauge names fail at decoration', () => {
  it("@Limited('') on a method names Class.method", () => {
    expect(() => {
      class Orders {
        @Limited('')
        list() {}
      }
      return Orders;
    }).toThrow(/@Limited\(\) on Orders\.list: the gauge name must be a non-empty string/);
  });

  it("@Limited('  ') on a class names the class", () => {
    expect(() => {
      @Limited('  ')
      class Invoices {}
      return Invoices;
    }).toThrow(/@Limited\(\) on Invoices: the gauge name/);
  });

  it("@InjectGauge('') throws", () => {
    expect(() => InjectGauge('')).toThrow(/@InjectGauge\(\): the gauge name/);
  });
});
