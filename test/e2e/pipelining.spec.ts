import 'reflect-metadata';
import {
  Controller,
  Get,
  Injectable,
  Param,
  UseGuards,
  UseInterceptors,
  type CallHandler,
  type CanActivate,
  type ExecutionContext,
  type NestInterceptor,
  type PipeTransform,
} from '@nestjs/common';
import { finalize } from 'rxjs';
import { BackpressureModule, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { Probe } from './support/probe';
import { pipeline } from './support/raw-client';
import { settle, until } from '../support/wait';

// Issue 8, defect 4: a request whose connection is gone must not run its handler, however it
// arrived. Pipelined HTTP/1.1 requests queued behind the one being answered have no socket on
// their response (Node reports 'close' only on the response being written), so a queued one
// never saw its client leave: 10 of 15 still ran once the slot came free. Required: a queued
// request leaves the queue when its connection goes; one that reaches the gauge (or the handler,
// after an async pipe) with its connection gone is turned away; Nest still ends every request.

type Watched = { closed?: boolean; destroyed?: boolean };

/** Records the connection (`socket`) and each request's raw response by `id`. */
@Injectable()
class WatchConnection implements CanActivate {
  constructor(private readonly probe: Probe) {}
  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const req = http.getRequest<{ params: { id: string }; raw?: object; socket?: Watched }>();
    const res = http.getResponse<{ raw?: object }>();
    this.probe.responses.set('socket', ((req.raw ?? req) as { socket: Watched }).socket);
    this.probe.responses.set(req.params.id, (res.raw ?? res) as Watched);
    return true;
  }
}

/** Holds a request before the interceptor (a slow auth guard), until the test passes `guard id`. */
@Injectable()
class SlowGuard implements CanActivate {
  constructor(private readonly probe: Probe) {}
  async canActivate(context: ExecutionContext): Promise<boolean> {
    const { id } = context.switchToHttp().getRequest<{ params: { id: string } }>().params;
    await this.probe.enter(`guard ${id}`);
    return true;
  }
}

/** An async pipe (after the slot is taken, before the handler), held until `pipe id` passes. */
@Injectable()
class SlowPipe implements PipeTransform {
  constructor(private readonly probe: Probe) {}
  async transform(id: string): Promise<string> {
    await this.probe.enter(`pipe ${id}`);
    return id;
  }
}

/** Counts the requests Nest is done with (the interceptor chain settled or torn down). */
class Ends {
  count = 0;
}

@Injectable()
class RecordEnd implements NestInterceptor {
  constructor(private readonly ends: Ends) {}
  intercept(_context: ExecutionContext, next: CallHandler) {
    return next.handle().pipe(finalize(() => this.ends.count++));
  }
}

@Controller()
@UseGuards(WatchConnection)
@UseInterceptors(RecordEnd)
class PipelinedController {
  constructor(private readonly probe: Probe) {}

  private async run(id: string) {
    await this.probe.enter(id);
    return id;
  }

  @Get('line/:id')
  @Limited('line')
  line(@Param('id') id: string) {
    return this.run(id);
  }

  @Get('fast/:id')
  @Limited('fast')
  fast(@Param('id') id: string) {
    return this.run(id);
  }

  @Get('guarded-line/:id')
  @UseGuards(SlowGuard)
  @Limited('line')
  guardedLine(@Param('id') id: string) {
    return this.run(id);
  }

  @Get('guarded-fast/:id')
  @UseGuards(SlowGuard)
  @Limited('fast')
  guardedFast(@Param('id') id: string) {
    return this.run(id);
  }

  @Get('piped/:id')
  @Limited('wide')
  piped(@Param('id', SlowPipe) id: string) {
    return this.run(id);
  }

  @Get('piped-line/:id')
  @Limited('line')
  pipedLine(@Param('id', SlowPipe) id: string) {
    return this.run(id);
  }
}

const IDS = Array.from({ length: 15 }, (_, i) => String(i + 1));

describe.each(PLATFORMS)(
  'requests whose connection is gone do not run, on %s',
  (platform: Platform) => {
    let probe: Probe;
    let ends: Ends;
    let running: Running;

    beforeEach(async () => {
      probe = new Probe();
      ends = new Ends();
      running = await startApp(
        platform,
        moduleOf({
          imports: [
            BackpressureModule.forRoot({
              gauges: {
                line: { limit: 1, queue: { size: 20, timeoutMs: 10_000 } },
                fast: { limit: 1 },
                wide: { limit: 15 },
              },
            }),
          ],
          controllers: [PipelinedController],
          providers: [
            { provide: Probe, useValue: probe },
            { provide: Ends, useValue: ends },
            SlowPipe,
          ],
        }),
      );
    });

    afterEach(async () => {
      probe.openAll();
      await running.close();
    });

    /** Labels of the handlers that ran (not guards or pipes). */
    const handlers = () => probe.entered.filter((label) => !/^(guard|pipe) /.test(label));

    async function serverSeesConnectionGone(): Promise<void> {
      await until(() => probe.responses.get('socket')?.destroyed === true, 'the server sees it');
    }

    /** Waits until every request is over or some handler ran that should not, then checks. */
    async function expectNoneRan(total: number, allowed: string[] = []): Promise<void> {
      await until(
        () => ends.count === total || handlers().length > allowed.length,
        'every request is over (or a handler ran)',
      );
      expect(handlers()).toEqual(allowed);
      await settle();
      expect(handlers()).toEqual(allowed);
    }

    it('queue: pipelined requests waiting behind a held one leave the queue when the connection goes', async () => {
      const gauge = running.gauge('line');
      const client = await pipeline(
        running.url,
        IDS.map((id) => `/line/${id}`),
      );
      await until(() => handlers().length === 1 && gauge.queued === 14, '1 runs, 14 wait');
      client.close();
      await serverSeesConnectionGone();
      await until(() => gauge.queued === 0, 'the waiting requests leave the queue');
      expect(gauge.aborted).toBe(14);

      probe.pass('1');
      await until(() => gauge.inFlight === 0, 'the slot is free');
      await expectNoneRan(15, ['1']);
      expect(gauge).toMatchObject({ inFlight: 0, queued: 0, admitted: 1 });
    });

    it('fail fast: pipelined requests behind a held one are refused and never run', async () => {
      const gauge = running.gauge('fast');
      const client = await pipeline(
        running.url,
        IDS.map((id) => `/fast/${id}`),
      );
      await until(() => handlers().length === 1 && gauge.rejected === 14, '1 runs, 14 refused');
      client.close();
      await serverSeesConnectionGone();
      probe.pass('1');
      await until(() => gauge.inFlight === 0, 'the slot is free');
      await expectNoneRan(15, ['1']);
      expect(gauge).toMatchObject({ inFlight: 0, admitted: 1, rejected: 14 });
    });

    it.each(['line', 'fast'])(
      '%s: pipelined requests held in a guard when the connection goes are turned away',
      async (name) => {
        const gauge = running.gauge(name);
        const client = await pipeline(
          running.url,
          IDS.map((id) => `/guarded-${name}/${id}`),
        );
        await until(() => probe.entered.length === 15, 'every request is in the guard');
        client.close();
        await serverSeesConnectionGone();
        probe.passAll();
        await expectNoneRan(15);
        await until(() => gauge.inFlight === 0, 'no slot is held');
        expect(gauge).toMatchObject({ inFlight: 0, queued: 0, admitted: 0 });
      },
    );

    it('a client that leaves during an async pipe: its handler does not run, its slot is freed', async () => {
      const gauge = running.gauge('wide');
      const call = send(running.url, '/piped/a');
      await until(() => probe.entered.includes('pipe a'), 'the request is in its pipe');
      expect(gauge.inFlight).toBe(1); // the slot is taken before pipes run
      call.abort();
      await until(() => probe.responses.get('a')?.closed === true, 'the server sees it leave');
      probe.pass('pipe a');
      await expectNoneRan(1);
      await until(() => gauge.inFlight === 0, 'the slot is free');
    });

    it('pipelined requests in their async pipes when the connection goes: none runs', async () => {
      const gauge = running.gauge('wide');
      const client = await pipeline(running.url, ['/piped/a', '/piped/b', '/piped/c']);
      await until(() => probe.entered.length === 3, 'every request is in its pipe');
      expect(gauge.inFlight).toBe(3);
      client.close();
      await serverSeesConnectionGone();
      probe.passAll();
      await expectNoneRan(3);
      await until(() => gauge.inFlight === 0, 'the slots are free');
    });

    it('queue: the first in its async pipe, 4 waiting, when the connection goes: none runs', async () => {
      const gauge = running.gauge('line');
      const client = await pipeline(
        running.url,
        IDS.slice(0, 5).map((id) => `/piped-line/${id}`),
      );
      await until(() => probe.entered.length === 1 && gauge.queued === 4, '1 in its pipe, 4 wait');
      client.close();
      await serverSeesConnectionGone();
      probe.pass('pipe 1');
      await expectNoneRan(5);
      await until(() => gauge.inFlight === 0 && gauge.queued === 0, 'nothing held or queued');
      expect(probe.entered).toEqual(['pipe 1']);
    });
  },
);
