import 'reflect-metadata';
import {
  Controller,
  Get,
  Injectable,
  UseGuards,
  UseInterceptors,
  type CallHandler,
  type CanActivate,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { finalize } from 'rxjs';
import {
  BackpressureModule,
  Limited,
  type Gauge,
  type GaugeStore,
  type Outcome,
  type Release,
  type ResolvedGaugeOptions,
  classifyError,
} from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { Probe } from './support/probe';
import { settle, until } from '../support/wait';

/**
 * A gauge that, like a remote store might, ignores the caller's AbortSignal: a slot is granted
 * only when the test calls `grant()`, whether or not the caller still waits.
 */
class ManualGauge implements Gauge {
  readonly limit = 1;
  readonly retryAfterSeconds = 1;
  readonly mayWait = true;
  inFlight = 0;
  queued = 0;
  admitted = 0;
  rejected = 0;
  timedOut = 0;
  aborted = 0;
  releaseCalls = 0;
  /** The outcome each release gave back (undefined: none given, a real gauge's `succeeded`). */
  readonly outcomes: (Outcome | undefined)[] = [];
  private readonly waiting: Array<(release: Release) => void> = [];

  constructor(readonly name: string) {}

  acquire(): Promise<Release> {
    this.queued++;
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  grant(): void {
    this.queued--;
    this.inFlight++;
    this.admitted++;
    this.waiting.shift()!((outcome?: Outcome) => {
      this.outcomes.push(outcome);
      this.releaseCalls++;
      this.inFlight--;
    });
  }

  process<T>(): Promise<T> {
    return Promise.reject(new Error('not used'));
  }

  readonly classify = classifyError;
  setLimit(): void {}
  subscribe(): () => void {
    return () => undefined;
  }
}

class ManualStore implements GaugeStore {
  createGauge(options: ResolvedGaugeOptions): ManualGauge {
    return new ManualGauge(options.name);
  }
}

/** Records the raw response before the interceptor runs, to see the client leave. */
@Injectable()
class WatchResponse implements CanActivate {
  constructor(private readonly probe: Probe) {}
  canActivate(context: ExecutionContext): boolean {
    const res = context.switchToHttp().getResponse<{ raw?: object }>();
    this.probe.responses.set('waiting', (res.raw ?? res) as { closed?: boolean });
    return true;
  }
}

/** Records that Nest is done with the request (the interceptor chain settled). */
@Injectable()
class RecordEnd implements NestInterceptor {
  constructor(private readonly probe: Probe) {}
  intercept(_context: ExecutionContext, next: CallHandler) {
    return next.handle().pipe(finalize(() => this.probe.entered.push('request ended')));
  }
}

@Controller()
@UseGuards(WatchResponse)
@UseInterceptors(RecordEnd)
class WaitingController {
  constructor(private readonly probe: Probe) {}

  @Get('wait')
  @Limited('manual')
  async wait() {
    this.probe.entered.push('handler');
    return 'ran';
  }
}

describe.each(PLATFORMS)('a slot granted after the client left, on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running;

  beforeEach(async () => {
    probe = new Probe();
    const module = moduleOf({
      imports: [BackpressureModule.forRoot({ store: new ManualStore() })],
      controllers: [WaitingController],
      providers: [{ provide: Probe, useValue: probe }],
    });
    running = await startApp(platform, module);
  });

  afterEach(() => running.close());

  it('is given back at once (ignored), the handler never runs, and the request still ends', async () => {
    const gauge = running.gauge('manual') as ManualGauge;
    const call = send(running.url, '/wait');
    await until(() => gauge.queued === 1, 'the request waits for a slot');
    call.abort();
    await until(() => probe.responses.get('waiting')?.closed === true, 'the server sees it leave');

    gauge.grant();
    await until(() => probe.entered.includes('request ended'), 'Nest is done with the request');
    await settle();
    expect(probe.entered).toEqual(['request ended']);
    expect(gauge).toMatchObject({ inFlight: 0, releaseCalls: 1 });
    // No work ran in it: nothing for an adaptive limit or the hold-time mean to learn.
    expect(gauge.outcomes).toEqual(['ignored']);
  });
});
