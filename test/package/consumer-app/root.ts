// A consumer of the packed library's root entry, compiled by ../consumer-build.mjs in a temporary
// app with `skipLibCheck: false` and WITHOUT ioredis installed. It names every public export of
// `nestjs-backpressure` at least once, so a type the root entry reaches that needs a missing
// package (ioredis, @nestjs/microservices, @nestjs/websockets) fails the build. `main()` runs it.
import 'reflect-metadata';
import {
  Controller,
  Get,
  Inject,
  Injectable,
  Module,
  type ArgumentsHost,
  type DynamicModule,
} from '@nestjs/common';
import { NestFactory, Reflector } from '@nestjs/core';
import {
  BACKPRESSURE_OPTIONS,
  BackpressureException,
  BackpressureInterceptor,
  BackpressureModule,
  BackpressureRefusal,
  BackpressureUnavailableException,
  DEFAULT_LIMIT,
  DEFAULT_MAX_DYNAMIC_GAUGES,
  GaugeAbortedError,
  GaugeCapacityException,
  GaugeConfigError,
  GaugeErrorFilter,
  GaugeExhaustedError,
  GaugeRegistry,
  GaugeUnavailableError,
  getGaugeToken,
  InjectGauge,
  InvalidGaugeNameException,
  LIMITED_GAUGE,
  Limited,
  MAX_RUNTIME_GAUGE_NAME_LENGTH,
  Unlimited,
  MemoryGaugeStore,
  PressureGauge,
  resolveGaugeOptions,
  type BackpressureFeatureOptions,
  type BackpressureModuleAsyncOptions,
  type BackpressureModuleOptions,
  type BackpressureOptionsFactory,
  type ExhaustionReason,
  type Gauge,
  type GaugeConfig,
  type GaugeOptions,
  type GaugeStats,
  type GaugeStore,
  type InvalidGaugeNameReason,
  type QueueOptions,
  type RefusalHook,
  type RefusalInfo,
  type RefusalPayload,
  type RefusalShape,
  type RefusalStatus,
  type Release,
  type ResolvedGaugeOptions,
  type StoreDownPolicy,
  type UnknownGaugesPolicy,
} from 'nestjs-backpressure';

/** A custom store, as the README describes one: validated options in, any `Gauge` out. */
class CountingStore implements GaugeStore {
  created = 0;
  createGauge(options: ResolvedGaugeOptions): Gauge {
    this.created++;
    return new PressureGauge(options);
  }
}

const queue: QueueOptions = { size: 2, timeoutMs: 500 };
const whenStoreDown: StoreDownPolicy = { localLimit: 1 };
const pdf: GaugeOptions = { limit: 2, queue, whenStoreDown };
const store = new CountingStore();
const report: GaugeConfig = { ...pdf, store: new MemoryGaugeStore() };
const unknownGauges: UnknownGaugesPolicy = 'error';
/** A refusal hook: logs every refusal, answers 503 for a full queue. */
const onRefusal: RefusalHook = (refusal: RefusalInfo, context: ArgumentsHost) => {
  console.debug(`refused ${refusal.gauge} ${refusal.reason} (${context.getType()})`);
  const status: RefusalStatus = refusal.reason === 'queue-full' ? 503 : refusal.status;
  const shape: RefusalShape = {
    status,
    body: { ...refusal.body, retry: refusal.retryAfterSeconds },
  };
  return shape;
};
const options: BackpressureModuleOptions = {
  defaultLimit: DEFAULT_LIMIT,
  gauges: { pdf, report },
  store,
  maxDynamicGauges: DEFAULT_MAX_DYNAMIC_GAUGES,
  unknownGauges,
  onRefusal,
};
const feature: BackpressureFeatureOptions = { gauges: ['api', 'pdf'] };

/**
 * An option given as `undefined` (an unset environment variable) means "not set": it compiles
 * under `exactOptionalPropertyTypes` too, which consumer-build.mjs turns on.
 */
const fromEnv = (name: string): number | undefined =>
  process.env[name] === undefined ? undefined : Number(process.env[name]);
export const tuned: DynamicModule = BackpressureModule.forRoot({
  defaultLimit: fromEnv('MAX_CONCURRENT'),
  store: process.env.SHARED === undefined ? undefined : store,
  gauges: { pdf: { ...pdf, retryAfterSeconds: fromEnv('PDF_RETRY_AFTER'), queue: undefined } },
  isGlobal: undefined,
});

@Injectable()
class OptionsFactory implements BackpressureOptionsFactory {
  createBackpressureOptions(): BackpressureModuleOptions {
    return options;
  }
}
const asyncOptions: BackpressureModuleAsyncOptions = { useClass: OptionsFactory, isGlobal: true };
export const asyncModule: DynamicModule = BackpressureModule.forRootAsync(asyncOptions);

@Injectable()
class PdfService {
  constructor(
    @InjectGauge('pdf') readonly gauge: Gauge,
    @Inject(getGaugeToken('pdf')) readonly same: Gauge,
    @Inject(BACKPRESSURE_OPTIONS) readonly options: BackpressureModuleOptions,
    readonly registry: GaugeRegistry,
    readonly interceptor: BackpressureInterceptor,
  ) {}

  render(): Promise<string> {
    return this.gauge.process(() => 'pdf');
  }
}

@Controller()
@Limited('api')
class ApiController {
  constructor(readonly pdf: PdfService) {}

  @Get('pdf')
  @Limited('pdf')
  render(): Promise<string> {
    return this.pdf.render();
  }

  @Get('health')
  @Unlimited()
  health(): string {
    return 'ok';
  }
}

@Module({ imports: [BackpressureModule.forFeature(feature)] })
class FeatureModule {}

@Module({
  imports: [BackpressureModule.forRoot(options), FeatureModule],
  controllers: [ApiController],
  providers: [PdfService],
})
class AppModule {}

/** Every error and exception type, and what a client receives. */
export function describeRefusal(error: unknown): string {
  const reason: ExhaustionReason | 'aborted' | InvalidGaugeNameReason | undefined =
    error instanceof GaugeExhaustedError
      ? error.reason
      : error instanceof GaugeAbortedError
        ? 'aborted'
        : error instanceof InvalidGaugeNameException
          ? error.reason
          : undefined;
  if (error instanceof GaugeUnavailableError) return `unavailable ${error.retryAfterSeconds}`;
  if (error instanceof GaugeConfigError) return `config ${error.message}`;
  if (error instanceof GaugeCapacityException) return `capacity ${error.maxDynamicGauges}`;
  if (error instanceof BackpressureException) return `429 ${error.reason}`;
  if (error instanceof BackpressureUnavailableException) return `503 ${error.gauge}`;
  const payload: RefusalPayload = {
    status: 'error',
    statusCode: 429,
    error: 'Too Many Requests',
    message: 'Too many requests',
    reason: 'full',
    retryAfterSeconds: 1,
  };
  // The HTTP body, as a type (and, with @nestjs/swagger, the OpenAPI component of that name).
  const body: BackpressureRefusal = { ...payload, reason: 'queue-timeout' };
  return `${reason ?? 'other'} ${body.statusCode} ${MAX_RUNTIME_GAUGE_NAME_LENGTH}`;
}

/** The filter, registered by hand (as `app.useGlobalFilters(new GaugeErrorFilter(adapterHost))`). */
export function answer(filter: GaugeErrorFilter, error: unknown, host: ArgumentsHost): boolean {
  if (!(error instanceof GaugeExhaustedError)) return false;
  filter.catch(error, host);
  return true;
}

/** Boots the app without an HTTP server and runs work through gauges: the runtime smoke test. */
export async function main(): Promise<string> {
  const app = await NestFactory.createApplicationContext(AppModule, {
    logger: ['error'],
    abortOnError: false,
  });
  try {
    const service = app.get(PdfService);
    if (service.same !== service.gauge) throw new Error('getGaugeToken: another gauge');
    const gauge = new PressureGauge({ name: 'local', limit: 1 });
    const release: Release | undefined = gauge.tryAcquire();
    const stats: GaugeStats = gauge;
    const refused = await gauge.process(() => 'ran').catch(describeRefusal);
    release?.();
    const resolved = resolveGaugeOptions('x', { limit: 3 });
    const limitedName: unknown = app.get(Reflector).get(LIMITED_GAUGE, ApiController);
    return [
      await service.render(),
      refused,
      stats.admitted,
      resolved.limit,
      limitedName,
      service.registry.list().length,
      store.created,
    ].join(' ');
  } finally {
    await app.close();
  }
}
