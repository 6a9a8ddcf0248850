import 'reflect-metadata';
import {
  Controller,
  Get,
  GatewayTimeoutException,
  Injectable,
  UseInterceptors,
  type CallHandler,
  type NestInterceptor,
} from '@nestjs/common';
import { catchError, throwError, timeout, type Observable } from 'rxjs';
import { BackpressureModule, Limited, WorkSignal } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { get, send } from './support/http';
import { until } from '../support/wait';

/** Why each handler's signal fired, by route. */
const reasons = new Map<string, string>();

/** Work that runs until its signal says stop, as a well-behaved handler does. */
function untilStopped(route: string, signal: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    signal.addEventListener('abort', () => {
      const reason = signal.reason as Error;
      reasons.set(route, `${reason.name}: ${reason.message}`);
      resolve('stopped');
    });
  });
}

@Injectable()
class ShortTimeout implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(
      timeout(30),
      catchError(() => throwError(() => new GatewayTimeoutException())),
    );
  }
}

@Controller()
class WorkController {
  @Get('client')
  @Limited('client')
  client(@WorkSignal() signal: AbortSignal) {
    return untilStopped('client', signal);
  }

  @Get('overdue')
  @Limited('overdue')
  overdue(@WorkSignal() signal: AbortSignal) {
    return untilStopped('overdue', signal);
  }
}

@Controller('inner')
@Limited('inner')
class InnerController {
  @Get('timeout')
  @UseInterceptors(ShortTimeout)
  timedOut(@WorkSignal() signal: AbortSignal) {
    return untilStopped('inner', signal);
  }
}

describe.each(PLATFORMS)('@WorkSignal() on %s', (platform: Platform) => {
  let running: Running;

  beforeAll(async () => {
    running = await startApp(
      platform,
      moduleOf({
        imports: [
          BackpressureModule.forRoot({
            gauges: { client: { limit: 1 }, overdue: { limit: 1, maxHoldMs: 50 } },
          }),
        ],
        controllers: [WorkController, InnerController],
      }),
    );
  });
  afterAll(() => running.close());
  beforeEach(() => reasons.clear());

  it('fires when the client leaves; the work stops and its slot comes back', async () => {
    const call = send(running.url, '/client');
    const gauge = running.gauge('client');
    await until(() => gauge.inFlight === 1, 'the handler holds its slot');
    call.abort();
    await until(() => reasons.has('client'), 'the signal fires');
    expect(reasons.get('client')).toMatch(/^AbortError: The client left/);
    await until(() => gauge.inFlight === 0, 'the slot comes back');
  });

  it('fires when an inner timeout answered first; the slot is held until the work stops', async () => {
    const reply = await get(running.url, '/inner/timeout');
    expect(reply.status).toBe(504);
    await until(() => reasons.has('inner'), 'the signal fires');
    expect(reasons.get('inner')).toMatch(/^AbortError: The request was answered/);
    await until(() => running.gauge('inner').inFlight === 0, 'the slot comes back');
  });

  it('fires when the slot outlives maxHoldMs, with an overdue event; the answer still goes out', async () => {
    const events: string[] = [];
    const stop = running.gauge('overdue').subscribe((event) => events.push(event.type));
    const reply = await get(running.url, '/overdue');
    stop();
    expect(reply).toMatchObject({ status: 200, body: 'stopped' });
    expect(reasons.get('overdue')).toMatch(/^TimeoutError: Gauge "overdue": work held its slot/);
    expect(events).toEqual(expect.arrayContaining(['overdue', 'released']));
    expect(running.gauge('overdue').inFlight).toBe(0);
  });
});
