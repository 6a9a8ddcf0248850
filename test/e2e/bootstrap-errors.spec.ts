import 'reflect-metadata';
import { Controller, Get, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import {
  BackpressureModule,
  GaugeConfigError,
  InjectGauge,
  Limited,
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

/** Options as a typo or a bad env var would produce them; the types would not allow them. */
const bad = (options: unknown) => options as BackpressureModuleOptions;

const BAD_OPTIONS: Array<[string, BackpressureModuleOptions, RegExp]> = [
  ['limit 0', bad({ gauges: { api: { limit: 0 } } }), /Gauge "api": option "limit".*got 0/],
  ['limit -1', bad({ gauges: { api: { limit: -1 } } }), /Gauge "api": option "limit".*got -1/],
  ['limit NaN', bad({ gauges: { api: { limit: NaN } } }), /Gauge "api": option "limit".*got NaN/],
  ['limit 1.5', bad({ gauges: { api: { limit: 1.5 } } }), /Gauge "api": option "limit".*got 1.5/],
  [
    'negative queue size',
    bad({ gauges: { api: { queue: { size: -1, timeoutMs: 100 } } } }),
    /Gauge "api": option "queue.size".*got -1/,
  ],
  [
    'negative queue timeout',
    bad({ gauges: { api: { queue: { size: 1, timeoutMs: -5 } } } }),
    /Gauge "api": option "queue.timeoutMs".*got -5/,
  ],
  ['unknown option', bad({ gauges: { api: { limt: 5 } } }), /Gauge "api": unknown option "limt"/],
  ['defaultLimit 0', bad({ defaultLimit: 0 }), /option "defaultLimit".*got 0/],
];

describe('bad options fail the bootstrap, not the first request', () => {
  it.each(BAD_OPTIONS)('%s: compile() rejects', async (_case, options, message) => {
    const compiling = Test.createTestingModule({
      imports: [BackpressureModule.forRoot(options)],
      controllers: [AnyController],
    }).compile();
    await expect(compiling).rejects.toThrow(GaugeConfigError);
    await expect(compiling).rejects.toThrow(message);
  });

  it.each(BAD_OPTIONS)('%s: NestFactory.create rejects', async (_case, options, message) => {
    const module = moduleOf({
      imports: [BackpressureModule.forRoot(options)],
      controllers: [AnyController],
    });
    const creating = NestFactory.create(module, { logger: false, abortOnError: false });
    await expect(creating).rejects.toThrow(message);
  });

  it.each<[string, () => DynamicModule]>([
    ['forRoot(0)', () => BackpressureModule.forRoot(0)],
    ['forRoot(-1)', () => BackpressureModule.forRoot(-1)],
    ['forRoot(2.5)', () => BackpressureModule.forRoot(2.5)],
  ])('%s throws when the module is declared', (_case, declare) => {
    expect(declare).toThrow(/BackpressureModule: option "defaultLimit"/);
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
