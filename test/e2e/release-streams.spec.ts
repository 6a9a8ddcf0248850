import 'reflect-metadata';
import { Controller, Get, Res, Sse, StreamableFile, type MessageEvent } from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import { BackpressureModule, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { CountingStore, type CountingGauge } from './support/counting-store';
import { send } from './support/http';
import { Probe } from './support/probe';
import { settle, until } from '../support/wait';

type RawResponse = { closed?: boolean };

@Controller()
@Limited('end')
class StreamsController {
  constructor(private readonly probe: Probe) {}

  @Get('file')
  file() {
    return new StreamableFile(this.probe.body);
  }

  @Get('late-file')
  async lateFile(@Res({ passthrough: true }) res: { raw?: RawResponse } & RawResponse) {
    this.probe.responses.set('late', res.raw ?? res);
    await this.probe.enter('late');
    return new StreamableFile(this.probe.body);
  }

  @Sse('sse')
  sse(): Observable<MessageEvent> {
    return this.probe.events.pipe(map((data) => ({ data })));
  }
}

describe.each(PLATFORMS)('streamed responses release once, on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running;
  let gauge: CountingGauge;

  beforeEach(async () => {
    probe = new Probe();
    const module = moduleOf({
      imports: [
        BackpressureModule.forRoot({ gauges: { end: { limit: 2 } }, store: new CountingStore() }),
      ],
      controllers: [StreamsController],
      providers: [{ provide: Probe, useValue: probe }],
    });
    running = await startApp(platform, module);
    gauge = running.gauge('end') as CountingGauge;
  });

  afterEach(async () => {
    probe.openAll();
    probe.body.destroy();
    await running.close();
  });

  /** The slot is free, and freed by one call: none late (a stream's 'close' after its 'end'). */
  async function expectReleasedOnce(admitted = 1) {
    await until(() => gauge.inFlight === 0, 'the slot is free');
    await settle();
    expect(gauge).toMatchObject({ inFlight: 0, admitted, releaseCalls: admitted });
  }

  it('a StreamableFile: held until the whole body is sent', async () => {
    const call = send(running.url, '/file');
    probe.body.push('one,');
    await until(() => call.received() === 'one,', 'the first chunk arrives');
    expect(gauge.inFlight).toBe(1);
    probe.body.push('two');
    probe.body.push(null);
    const reply = await call.reply;
    expect(reply).toMatchObject({ status: 200, body: 'one,two' });
    await expectReleasedOnce();
  });

  it('a StreamableFile: freed when the client disconnects mid-stream', async () => {
    const call = send(running.url, '/file');
    probe.body.push('one,');
    await until(() => call.received() === 'one,', 'the first chunk arrives');
    call.abort();
    await expectReleasedOnce();
  });

  it('a StreamableFile returned after the client left: freed', async () => {
    const call = send(running.url, '/late-file');
    await until(() => probe.entered.length === 1, 'the handler runs');
    call.abort();
    await until(
      () => probe.responses.get('late')?.closed === true,
      'the server sees the client leave',
    );
    expect(gauge.inFlight).toBe(1);
    probe.pass('late');
    await expectReleasedOnce();
  });

  it('SSE: held while streaming, freed when the stream completes', async () => {
    const call = send(running.url, '/sse');
    await until(() => probe.events.observed, 'the stream is subscribed');
    probe.events.next('one');
    await until(() => call.received().includes('data: one'), 'the first event arrives');
    expect(gauge.inFlight).toBe(1);
    probe.events.complete();
    expect((await call.reply).status).toBe(200);
    await expectReleasedOnce();
  });

  it('SSE: freed when the client disconnects before the first event', async () => {
    const call = send(running.url, '/sse');
    await until(() => probe.events.observed, 'the stream is subscribed');
    await call.status; // the headers are out: the stream is open
    expect(gauge.inFlight).toBe(1);
    call.abort();
    await expectReleasedOnce();
    expect(probe.events.observed).toBe(false);
  });

  it('SSE: freed when the client disconnects', async () => {
    const call = send(running.url, '/sse');
    await until(() => probe.events.observed, 'the stream is subscribed');
    probe.events.next('one');
    await until(() => call.received().includes('data: one'), 'the first event arrives');
    expect(gauge.inFlight).toBe(1);
    call.abort();
    await expectReleasedOnce();
    expect(probe.events.observed).toBe(false);
  });
});
