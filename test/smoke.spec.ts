import 'reflect-metadata';
import { Controller, Get, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { BackpressureModule, InjectGauge, Limited, PressureGauge } from '../src';

@Injectable()
class Svc {
  constructor(@InjectGauge('svc') readonly gauge: PressureGauge) {}
}

let releaseAll: () => void = () => {};
const gate = () => new Promise<void>((r) => { const prev = releaseAll; releaseAll = () => { prev(); r(); }; });

@Controller()
@Limited('cls')
class C {
  constructor(private readonly svc: Svc) {}
  @Get('a') @Limited('m') async a() { await gate(); return 'done'; }
  @Get('b') b() { return this.svc.gauge.limit; }
}
@Module({ imports: [BackpressureModule.forRoot({ defaultLimit: 2, gauges: { svc: { limit: 7 } } })], controllers: [C], providers: [Svc] })
class M {}

describe.each([['express', undefined], ['fastify', () => new FastifyAdapter()]])('%s', (_n, adapter) => {
  it('limits', async () => {
    const app = adapter ? await NestFactory.create(M, adapter(), { logger: false }) : await NestFactory.create(M, { logger: false });
    await app.listen(0, '127.0.0.1');
    const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    const ps = [1, 2, 3].map(() => fetch(url + '/a'));
    await new Promise((r) => setTimeout(r, 200));
    releaseAll();
    const rs = await Promise.all(ps);
    const st = rs.map((r) => r.status).sort();
    expect(st).toEqual([200, 200, 429]);
    const r429 = rs.find((r) => r.status === 429)!;
    expect(r429.headers.get('retry-after')).toBe('1');
    expect(await r429.json()).toEqual({ statusCode: 429, message: 'Too many requests', error: 'Too Many Requests' });
    expect(await (await fetch(url + '/b')).text()).toBe('7');
    await app.close();
  });
});
