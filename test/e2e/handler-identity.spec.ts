import 'reflect-metadata';
import {
  CanActivate,
  Controller,
  ExecutionContext,
  Get,
  Header,
  HttpCode,
  Injectable,
  Param,
  SetMetadata,
  UseGuards,
  UseInterceptors,
  type CallHandler,
  type NestInterceptor,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { catchError, of, timeout } from 'rxjs';
import { BackpressureModule, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { send } from './support/http';
import { Probe } from './support/probe';
import { settle } from '../support/wait';
import { Runs } from './support/runs';

class TimeoutFallback implements NestInterceptor {
  intercept(_c: unknown, next: CallHandler) {
    return next.handle().pipe(
      timeout({ first: 20 }),
      catchError(() => of('fallback')),
    );
  }
}

/** A generic base controller, unlimited itself. */
abstract class CrudBase {
  constructor(
    protected readonly probe: Probe,
    protected readonly runs: Runs,
  ) {}

  @Get('item/:id')
  @UseInterceptors(TimeoutFallback)
  async item(@Param('id') id: string) {
    this.runs.start();
    try {
      await this.probe.enter(id);
      return id;
    } finally {
      this.runs.end();
    }
  }
}

@Controller('inherit')
@Limited('inherit')
class InheritingController extends CrudBase {
  constructor(probe: Probe, runs: Runs) {
    super(probe, runs);
  }
}

/** A typical logging/tracing decorator: wraps the method and copies its metadata. */
function Traced(): MethodDecorator {
  return (_t, _k, descriptor: PropertyDescriptor) => {
    const original = descriptor.value as (...a: unknown[]) => unknown;
    const wrapped = function (this: unknown, ...args: unknown[]) {
      return original.apply(this, args);
    };
    for (const key of Reflect.getMetadataKeys(original)) {
      Reflect.defineMetadata(key, Reflect.getMetadata(key, original), wrapped);
    }
    descriptor.value = wrapped;
  };
}

const ROLE = 'role';
@Injectable()
class RoleGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}
  canActivate(context: ExecutionContext) {
    return this.reflector.get(ROLE, context.getHandler()) === 'admin';
  }
}

@Controller('order')
class OrderController {
  constructor(
    private readonly probe: Probe,
    private readonly runs: Runs,
  ) {}

  private async held(id: string) {
    this.runs.start();
    try {
      await this.probe.enter(id);
      return id;
    } finally {
      this.runs.end();
    }
  }

  // traced above @Limited, inner timeout above both
  @Get('traced-above/:id')
  @UseInterceptors(TimeoutFallback)
  @Traced()
  @Limited('traced')
  tracedAbove(@Param('id') id: string) {
    return this.held(id);
  }

  @UseInterceptors(TimeoutFallback)
  @Limited('traced2')
  @Traced()
  @Get('traced-below/:id')
  tracedBelow(@Param('id') id: string) {
    return this.held(id);
  }

  @Limited('meta')
  @SetMetadata(ROLE, 'admin')
  @UseGuards(RoleGuard)
  @HttpCode(202)
  @Header('x-below', '1')
  @Get('meta-below')
  metaBelow() {
    return 'ok';
  }

  @SetMetadata(ROLE, 'admin')
  @UseGuards(RoleGuard)
  @HttpCode(202)
  @Header('x-above', '1')
  @Get('meta-above')
  @Limited('meta')
  metaAbove() {
    return 'ok';
  }
}

describe.each(PLATFORMS)('which handler runs are limited, on %s', (platform: Platform) => {
  let probe: Probe;
  let runs: Runs;
  let running: Running;

  beforeEach(async () => {
    probe = new Probe();
    runs = new Runs();
    running = await startApp(
      platform,
      moduleOf({
        imports: [
          BackpressureModule.forRoot({
            gauges: {
              inherit: { limit: 1 },
              traced: { limit: 1 },
              traced2: { limit: 1 },
              meta: { limit: 5 },
            },
          }),
        ],
        controllers: [InheritingController, OrderController],
        providers: [
          { provide: Probe, useValue: probe },
          { provide: Runs, useValue: runs },
        ],
      }),
    );
  });
  afterEach(async () => {
    probe.openAll();
    await running.close();
  });

  for (const path of ['/inherit/item', '/order/traced-above', '/order/traced-below']) {
    it(`limit 1 holds under an inner timeout: ${path}`, async () => {
      const a = await send(running.url, `${path}/a`).reply;
      const b = await send(running.url, `${path}/b`).reply;
      await settle(20);
      // The inner timeout answered a, whose handler still holds the only slot: b is refused.
      expect([a.status, a.body]).toEqual([200, 'fallback']);
      expect(b.status).toBe(429);
      expect(runs.peak).toBeLessThanOrEqual(1);
    });
  }

  it('metadata set below and above @Limited still applies (guard, status, header)', async () => {
    for (const [path, header] of [
      ['/order/meta-below', 'x-below'],
      ['/order/meta-above', 'x-above'],
    ] as const) {
      const reply = await send(running.url, path).reply;
      expect({ status: reply.status, header: reply.headers[header], body: reply.body }).toEqual({
        status: 202,
        header: '1',
        body: 'ok',
      });
    }
  });
});
