import {
  Controller,
  HttpException,
  HttpStatus,
  Get,
  Inject,
  Injectable,
  Module,
  UseGuards,
  UseInterceptors,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
  type OnApplicationBootstrap,
  type Type,
} from '@nestjs/common';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import { throwError, type Observable } from 'rxjs';
import type { GaugeRegistry } from '../../src';
import { lib } from '../harness/lib';

/**
 * Scenarios 1 and 2: the same trivial GET with nothing, an empty interceptor (Nest's floor for
 * anything that wraps a handler), `@Limited` with ample slots (a fixed limit, or gradient2 sampling
 * every release), @nestjs/throttler with an ample
 * limit, `@Limited` on a gauge whose only slot is held (every request is refused), and an
 * interceptor throwing a plain HttpException(429) (Nest's own floor for a refusal).
 */

@Controller()
class BareController {
  @Get()
  get(): string {
    return 'ok';
  }
}

@Injectable()
class EmptyInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle();
  }
}

@Controller()
class EmptyController {
  @Get()
  @UseInterceptors(EmptyInterceptor)
  get(): string {
    return 'ok';
  }
}

/** Nest's own floor for a 429: an interceptor that refuses every request with a fresh HttpException. */
@Injectable()
class RefuseInterceptor implements NestInterceptor {
  intercept(): Observable<unknown> {
    return throwError(() => new HttpException('Too many requests', HttpStatus.TOO_MANY_REQUESTS));
  }
}

@Controller()
class RefusingController {
  @Get()
  @UseInterceptors(RefuseInterceptor)
  get(): string {
    return 'ok';
  }
}

@Controller()
class LimitedController {
  @Get()
  @lib.Limited('bench')
  get(): string {
    return 'ok';
  }
}

@Controller()
class ThrottledController {
  @Get()
  @UseGuards(ThrottlerGuard)
  get(): string {
    return 'ok';
  }
}

/** Takes the gauge's only slot at startup and never gives it back. */
@Injectable()
class SlotHog implements OnApplicationBootstrap {
  constructor(@Inject(lib.GaugeRegistry) private readonly registry: GaugeRegistry) {}

  onApplicationBootstrap(): void {
    if (typeof this.registry.get('bench').acquire() !== 'function')
      throw new Error('slot not taken');
  }
}

/** The root module for one variant. */
export function overheadModule(variant: string): Type {
  switch (variant) {
    case 'bare': {
      @Module({ controllers: [BareController] })
      class BareModule {}
      return BareModule;
    }
    case 'empty': {
      @Module({ controllers: [EmptyController] })
      class EmptyModule {}
      return EmptyModule;
    }
    case 'nest429': {
      @Module({ controllers: [RefusingController] })
      class Nest429Module {}
      return Nest429Module;
    }
    case 'limited': {
      @Module({
        imports: [lib.BackpressureModule.forRoot({ gauges: { bench: { limit: 10_000 } } })],
        controllers: [LimitedController],
      })
      class LimitedModule {}
      return LimitedModule;
    }
    case 'adaptive': {
      // Issue 10: every release timed and fed to gradient2; min 100 so a closed loop of 20
      // connections is never refused: the figure is the sampling's cost, not refusals.
      const limit = lib.gradient2({ min: 100, initial: 10_000, max: 10_000 });
      @Module({
        imports: [lib.BackpressureModule.forRoot({ gauges: { bench: { limit } } })],
        controllers: [LimitedController],
      })
      class AdaptiveModule {}
      return AdaptiveModule;
    }
    case 'throttler': {
      @Module({
        imports: [ThrottlerModule.forRoot([{ ttl: 1_000, limit: 1_000_000_000 }])],
        controllers: [ThrottledController],
      })
      class ThrottledModule {}
      return ThrottledModule;
    }
    case 'held': {
      @Module({
        imports: [lib.BackpressureModule.forRoot({ gauges: { bench: { limit: 1 } } })],
        controllers: [LimitedController],
        providers: [SlotHog],
      })
      class HeldModule {}
      return HeldModule;
    }
    default:
      throw new Error(`overhead: unknown variant ${variant}`);
  }
}
