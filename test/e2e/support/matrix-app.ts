import {
  Catch,
  ConflictException,
  Controller,
  GatewayTimeoutException,
  Get,
  HttpException,
  Injectable,
  Param,
  ParseIntPipe,
  Query,
  Req,
  Res,
  SetMetadata,
  Sse,
  StreamableFile,
  UseFilters,
  UseGuards,
  UseInterceptors,
  type ArgumentsHost,
  type CallHandler,
  type CanActivate,
  type ExceptionFilter,
  type ExecutionContext,
  type MessageEvent,
  type NestInterceptor,
  type PipeTransform,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import {
  MessageBody,
  SubscribeMessage,
  WebSocketGateway,
  WsException,
  type OnGatewayConnection,
} from '@nestjs/websockets';
import { Readable } from 'node:stream';
import {
  catchError,
  defer,
  finalize,
  map,
  of,
  race,
  retry,
  switchMap,
  take,
  throwError,
  timeout,
  timer,
  TimeoutError,
  type Observable,
} from 'rxjs';
import type WebSocket from 'ws';
import { Limited } from '../../../src';
import { sleep } from '../../support/wait';
import type { RunMeter } from './matrix-meter';

/** Slots of every gauge of the matrix. */
export const LIMIT = 2;
/** How long the timeout interceptors wait for the handler's first value. */
export const TIMEOUT_MS = 20;
/** When the racing "cache" answers. */
export const CACHE_MS = 25;
/** How long an ordinary handler works, in ms. */
const WORK: Span = [30, 80];
/**
 * How long a handler behind a timeout or race goes on working once the timeout has fired or the
 * cache has answered. It waits for that moment first (`Beats`) rather than being slower by the
 * clock: a stalled event loop may run a later timer of another duration first.
 */
const SLOW: Span = [20, 60];
type Span = readonly [number, number];

type Query = Record<string, string | undefined>;
/** The Node response (Express `res`, Fastify `reply.raw`), to see the client leave. */
interface RawLike {
  readonly closed?: boolean;
  readonly destroyed?: boolean;
  once(event: 'close', listener: () => void): unknown;
}
type PassthroughResponse = { raw?: RawLike } & RawLike;
/** `res` of Express or `reply` of Fastify: both answer with `.status(code).send(body)`. */
interface Answering {
  status(code: number): { send(body?: unknown): unknown };
}

/** What a stream handler sends for its value `n` (a string: every platform sends it as is). */
const tick = (n: number) => `tick${n}`;

/** A request, WebSocket message or RPC call: what an interceptor and its handler both see. */
type Call = object;

/** The object of a call that the handler receives too: the request, or the message payload. */
function callOf(context: ExecutionContext): Call {
  switch (context.getType()) {
    case 'rpc':
      return context.switchToRpc().getData<Call>();
    case 'ws':
      return context.switchToWs().getData<Call>();
    default:
      return context.switchToHttp().getRequest<Call>();
  }
}

/**
 * The moments a timeout or race interceptor stopped waiting for the handler, per call: its timer
 * fired, or it was torn down. A handler behind one waits for the latest moment of its call before
 * it goes on working, so it is certain to outlive the wait, however the event loop is scheduled:
 * the runs the matrix is about (work going on after the chain gave up on it) always happen, and
 * every answer is certain (504, fallback, cached).
 */
class Beats {
  private readonly byCall = new WeakMap<Call, Promise<void>[]>();

  /** A new moment of `call`; returns the function that marks it (idempotent). */
  mark(call: Call): () => void {
    let marked!: () => void;
    const moment = new Promise<void>((resolve) => (marked = resolve));
    const moments = this.byCall.get(call) ?? [];
    if (moments.length === 0) this.byCall.set(call, moments);
    moments.push(moment);
    return marked;
  }

  /** Resolves at the latest moment of `call` (at once if none was ever awaited). */
  latest(call: Call): Promise<void> {
    return this.byCall.get(call)?.at(-1) ?? Promise.resolve();
  }
}

const beats = new Beats();

/**
 * What the handlers do, metered: each run is counted by the `RunMeter` under its gauge's name, from
 * its body's start to the end of its own work. Provided by value, one per app.
 */
export class Work {
  private readonly attempts = new Map<string, number>();

  constructor(
    readonly meter: RunMeter,
    private readonly random: () => number,
  ) {}

  /**
   * A promise handler: works for a while (after the latest timeout or race of `call`, if given),
   * then returns `value` or throws `failure`.
   */
  async task<T>(
    gauge: string,
    span: Span,
    value: T,
    { after, failure }: { after?: Call | undefined; failure?: Error | undefined } = {},
  ): Promise<T> {
    const run = this.meter.begin(gauge);
    try {
      if (after) await beats.latest(after);
      await sleep(this.ms(span));
      if (failure) throw failure;
      return value;
    } finally {
      run.end();
    }
  }

  /** Fails the first `fail` attempts of request `id` (for the retry interceptors). */
  flaky(gauge: string, query: Query): Promise<string> {
    const id = `${gauge}:${query.id ?? 'anonymous'}`;
    const attempt = (this.attempts.get(id) ?? 0) + 1;
    this.attempts.set(id, attempt);
    const fails = attempt <= Number(query.fail ?? 0);
    return this.task(gauge, [15, 40], 'ok', {
      failure: fails ? new ConflictException('flaky') : undefined,
    });
  }

  /**
   * An Observable handler: `count` values, the first after `firstMs` (counted from the latest
   * timeout of `after`, if given), then every `everyMs`.
   */
  ticks(
    gauge: string,
    firstMs: number,
    everyMs: number,
    count: number,
    after?: Call,
  ): Observable<number> {
    const start = defer(() => (after ? beats.latest(after) : of(undefined)));
    return this.meter.observe(
      gauge,
      start.pipe(
        switchMap(() => timer(firstMs, everyMs)),
        take(count),
      ),
    );
  }

  /** An async `@Sse()` handler: sets up for a while, then streams 3 events. */
  async eventsLater(gauge: string): Promise<Observable<MessageEvent>> {
    const run = this.meter.begin(gauge);
    try {
      await sleep(this.ms([30, 60]));
      return run.during(timer(5, 20).pipe(take(3))).pipe(map((n) => ({ data: tick(n) })));
    } finally {
      run.end();
    }
  }

  /**
   * A `StreamableFile` handler: works for a while, then returns a body that streams 4 chunks, 15 ms
   * apart. The run goes on until the body has been sent or the client has gone (its stream ends or
   * closes, or the response closes): the stream is destroyed then, as a handler that frees what
   * it reads from should.
   */
  async file(
    gauge: string,
    span: Span,
    res: PassthroughResponse,
    after?: Call,
  ): Promise<StreamableFile> {
    const run = this.meter.begin(gauge);
    try {
      if (after) await beats.latest(after);
      await sleep(this.ms(span));
      const stream = slowBody(4, 15);
      const done = run.hold();
      const stop = () => {
        done();
        if (!stream.readableEnded) stream.destroy();
      };
      stream.once('end', done).once('close', done).once('error', done);
      const raw = res.raw ?? res;
      if (raw.closed === true || raw.destroyed === true) stop();
      else raw.once('close', stop);
      return new StreamableFile(stream, { type: 'text/plain' });
    } finally {
      run.end();
    }
  }

  private ms([min, max]: Span): number {
    return min + Math.floor(this.random() * (max - min + 1));
  }
}

/** A body that produces a chunk only when read, so an unread one does no work. */
function slowBody(chunks: number, everyMs: number): Readable {
  let sent = 0;
  let pending: ReturnType<typeof setTimeout> | undefined;
  return new Readable({
    read() {
      pending = setTimeout(() => {
        pending = undefined;
        sent++;
        this.push(sent <= chunks ? `chunk${sent};` : null);
      }, everyMs);
    },
    destroy(error, callback) {
      clearTimeout(pending);
      callback(error);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Interceptors, guard, pipe, filter

/** What a timed-out call fails with, in its context: 504 over HTTP, a payload with 504 elsewhere. */
function timedOut(context: ExecutionContext): Error {
  const payload = { status: 'error', statusCode: 504, message: 'Gateway Timeout' };
  switch (context.getType()) {
    case 'rpc':
      return new RpcException(payload);
    case 'ws':
      return new WsException(payload);
    default:
      return new GatewayTimeoutException();
  }
}

/** Turns rxjs' TimeoutError into `timedOut(context)`. */
function answerTimeout(context: ExecutionContext) {
  return catchError((error: unknown) =>
    throwError(() => (error instanceof TimeoutError ? timedOut(context) : error)),
  );
}

/**
 * `next.handle()` given up on after TIMEOUT_MS with a TimeoutError; each subscription is a new
 * wait, whose end (timer fired, or torn down) is a moment of the call (see `Beats`).
 */
function timedWait(context: ExecutionContext, next: CallHandler): Observable<unknown> {
  return defer(() => {
    const stopped = beats.mark(callOf(context));
    return next.handle().pipe(
      timeout({
        first: TIMEOUT_MS,
        with: () => {
          stopped();
          return throwError(() => new TimeoutError());
        },
      }),
      finalize(stopped),
    );
  });
}

/** Stops waiting for the handler after TIMEOUT_MS: 504 (not 500, so a 500 is always a bug). */
@Injectable()
export class TimeoutTo504 implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler) {
    return timedWait(context, next).pipe(answerTimeout(context));
  }
}

/** Stops waiting after TIMEOUT_MS and answers a fallback instead of any error. */
@Injectable()
export class TimeoutFallback implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler) {
    return timedWait(context, next).pipe(catchError(() => of('fallback')));
  }
}

/** Calls the handler again, up to twice, when it fails. */
@Injectable()
export class RetryTwice implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler) {
    return next.handle().pipe(retry(2));
  }
}

/** Gives up on the handler after TIMEOUT_MS and calls it once more, while the first still runs. */
@Injectable()
export class TimeoutThenRetry implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler) {
    return timedWait(context, next).pipe(retry(1), answerTimeout(context));
  }
}

/** A cache: `?hit=1` is answered without calling the handler (never subscribes to it). */
@Injectable()
export class CacheHit implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler) {
    const query = context.switchToHttp().getRequest<{ query?: Query }>().query;
    return query?.hit === '1' ? of('cached') : next.handle();
  }
}

/** Races the handler against a cache that answers after CACHE_MS (and always wins, see `Beats`). */
@Injectable()
export class RaceCache implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler) {
    return defer(() => {
      const answered = beats.mark(callOf(context));
      const cache = timer(CACHE_MS).pipe(
        map(() => {
          answered();
          return 'cached';
        }),
      );
      return race(next.handle(), cache).pipe(finalize(answered));
    });
  }
}

/** Answers with a stream's first value and unsubscribes from the rest. */
@Injectable()
export class FirstValue implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler) {
    return next.handle().pipe(take(1));
  }
}

/** Marks a handler for `GlobalTimeout`. */
export const GLOBAL_TIMEOUT = 'matrix:global-timeout';

/** An APP_INTERCEPTOR that times out the handlers marked with GLOBAL_TIMEOUT. */
@Injectable()
export class GlobalTimeout implements NestInterceptor {
  constructor(private readonly reflector: Reflector) {}

  intercept(context: ExecutionContext, next: CallHandler) {
    return this.reflector.get<boolean | undefined>(GLOBAL_TIMEOUT, context.getHandler())
      ? timedWait(context, next).pipe(answerTimeout(context))
      : next.handle();
  }
}

/** Lets a request through after a short async check, unless `?deny=1` (403). */
@Injectable()
export class DenyGuard implements CanActivate {
  async canActivate(context: ExecutionContext) {
    await sleep(5);
    return context.switchToHttp().getRequest<{ query?: Query }>().query?.deny !== '1';
  }
}

/** A pipe that takes its time (runs inside the slot, before the handler). */
@Injectable()
export class SlowPipe implements PipeTransform {
  async transform(value: unknown) {
    await sleep(20);
    return value;
  }
}

/** Answers every exception itself: HttpExceptions with their status, anything else with 409. */
@Catch()
export class AnswerAll implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost) {
    const res = host.switchToHttp().getResponse<Answering>();
    if (exception instanceof HttpException) {
      res.status(exception.getStatus()).send(exception.getResponse());
    } else {
      res.status(409).send({ statusCode: 409, message: 'work failed' });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Interceptors outside @Limited: on the class (or global), with @Limited on the method.

@Controller('outer-timeout')
@UseInterceptors(TimeoutTo504)
export class OuterTimeoutController {
  constructor(private readonly work: Work) {}

  @Get('promise')
  @Limited('outer-timeout')
  promise(@Req() req: Call) {
    return this.work.task('outer-timeout', SLOW, 'done', { after: req });
  }

  @Get('file')
  @Limited('outer-timeout-file')
  file(@Req() req: Call, @Res({ passthrough: true }) res: PassthroughResponse) {
    return this.work.file('outer-timeout-file', SLOW, res, req);
  }

  @Get('stream')
  @Limited('outer-timeout-stream')
  stream(@Req() req: Call) {
    return this.work.ticks('outer-timeout-stream', SLOW[0], 15, 3, req).pipe(map(tick));
  }
}

@Controller('outer-fallback')
@UseInterceptors(TimeoutFallback)
export class OuterFallbackController {
  constructor(private readonly work: Work) {}

  @Get()
  @Limited('outer-fallback')
  get(@Req() req: Call) {
    return this.work.task('outer-fallback', SLOW, 'done', { after: req });
  }
}

@Controller('outer-retry')
@UseInterceptors(RetryTwice)
export class OuterRetryController {
  constructor(private readonly work: Work) {}

  @Get()
  @Limited('outer-retry')
  get(@Query() query: Query) {
    return this.work.flaky('outer-retry', query);
  }
}

@Controller('outer-timeout-retry')
@UseInterceptors(TimeoutThenRetry)
export class OuterTimeoutRetryController {
  constructor(private readonly work: Work) {}

  @Get()
  @Limited('outer-timeout-retry')
  get(@Req() req: Call) {
    return this.work.task('outer-timeout-retry', SLOW, 'done', { after: req });
  }
}

@Controller('outer-cache')
@UseInterceptors(CacheHit)
export class OuterCacheController {
  constructor(private readonly work: Work) {}

  @Get()
  @Limited('outer-cache')
  get() {
    return this.work.task('outer-cache', WORK, 'fresh');
  }
}

@Controller('outer-race')
@UseInterceptors(RaceCache)
export class OuterRaceController {
  constructor(private readonly work: Work) {}

  @Get()
  @Limited('outer-race')
  get(@Req() req: Call) {
    return this.work.task('outer-race', SLOW, 'fresh', { after: req });
  }
}

@Controller('outer-take')
@UseInterceptors(FirstValue)
export class OuterTakeController {
  constructor(private readonly work: Work) {}

  @Get()
  @Limited('outer-take')
  get() {
    return this.work.ticks('outer-take', 10, 15, 5).pipe(map(tick));
  }
}

@Controller('global-timeout')
export class GlobalTimeoutController {
  constructor(private readonly work: Work) {}

  @Get()
  @Limited('global-timeout')
  @SetMetadata(GLOBAL_TIMEOUT, true)
  get(@Req() req: Call) {
    return this.work.task('global-timeout', SLOW, 'done', { after: req });
  }
}

// ---------------------------------------------------------------------------------------------
// Interceptors inside @Limited: @Limited on the class, the interceptor on the method (method
// interceptors run inside class ones). One class, so one gauge, per construct.

@Controller('inner-timeout')
@Limited('inner-timeout')
export class InnerTimeoutController {
  constructor(private readonly work: Work) {}

  @Get()
  @UseInterceptors(TimeoutTo504)
  get(@Req() req: Call) {
    return this.work.task('inner-timeout', SLOW, 'done', { after: req });
  }
}

@Controller('inner-timeout-file')
@Limited('inner-timeout-file')
export class InnerTimeoutFileController {
  constructor(private readonly work: Work) {}

  @Get()
  @UseInterceptors(TimeoutTo504)
  get(@Req() req: Call, @Res({ passthrough: true }) res: PassthroughResponse) {
    return this.work.file('inner-timeout-file', SLOW, res, req);
  }
}

@Controller('inner-fallback')
@Limited('inner-fallback')
export class InnerFallbackController {
  constructor(private readonly work: Work) {}

  @Get()
  @UseInterceptors(TimeoutFallback)
  get(@Req() req: Call) {
    return this.work.task('inner-fallback', SLOW, 'done', { after: req });
  }
}

@Controller('inner-retry')
@Limited('inner-retry')
export class InnerRetryController {
  constructor(private readonly work: Work) {}

  @Get()
  @UseInterceptors(RetryTwice)
  get(@Query() query: Query) {
    return this.work.flaky('inner-retry', query);
  }
}

@Controller('inner-timeout-retry')
@Limited('inner-timeout-retry')
export class InnerTimeoutRetryController {
  constructor(private readonly work: Work) {}

  @Get()
  @UseInterceptors(TimeoutThenRetry)
  get(@Req() req: Call) {
    return this.work.task('inner-timeout-retry', SLOW, 'done', { after: req });
  }
}

@Controller('inner-cache')
@Limited('inner-cache')
export class InnerCacheController {
  constructor(private readonly work: Work) {}

  @Get()
  @UseInterceptors(CacheHit)
  get() {
    return this.work.task('inner-cache', WORK, 'fresh');
  }
}

@Controller('inner-race')
@Limited('inner-race')
export class InnerRaceController {
  constructor(private readonly work: Work) {}

  @Get()
  @UseInterceptors(RaceCache)
  get(@Req() req: Call) {
    return this.work.task('inner-race', SLOW, 'fresh', { after: req });
  }
}

@Controller('inner-take')
@Limited('inner-take')
export class InnerTakeController {
  constructor(private readonly work: Work) {}

  @Get()
  @UseInterceptors(FirstValue)
  get() {
    return this.work.ticks('inner-take', 10, 15, 5).pipe(map(tick));
  }
}

// ---------------------------------------------------------------------------------------------
// @Limited on the method, with guards, pipes, filters, @Res(), SSE, files and streams.

@Controller('plain')
export class PlainController {
  constructor(private readonly work: Work) {}

  @Get('promise')
  @Limited('plain')
  promise() {
    return this.work.task('plain', WORK, 'done');
  }

  @Get('observable')
  @Limited('observable')
  observable() {
    return this.work.ticks('observable', 10, 15, 4).pipe(map(tick));
  }

  @Get('guarded')
  @UseGuards(DenyGuard)
  @Limited('guarded')
  guarded() {
    return this.work.task('guarded', WORK, 'done');
  }

  @Get('pipe-int/:n')
  @Limited('pipe-int')
  pipeInt(@Param('n', ParseIntPipe) n: number) {
    return this.work.task('pipe-int', WORK, { n: n * 2 });
  }

  @Get('pipe-slow')
  @Limited('pipe-slow')
  pipeSlow(@Query('n', SlowPipe) n: string) {
    return this.work.task('pipe-slow', WORK, `n=${n}`);
  }

  @Get('filtered')
  @UseFilters(AnswerAll)
  @Limited('filtered')
  filtered(@Query('fail') fail?: string) {
    return this.work.task('filtered', WORK, 'done', {
      failure: fail === '1' ? new Error('work failed') : undefined,
    });
  }

  @Get('res')
  @Limited('res')
  async res(@Res() res: Answering) {
    await this.work.task('res', WORK, undefined);
    res.status(200).send('sent');
  }

  @Sse('sse-sync')
  @Limited('sse-sync')
  sseSync(): Observable<MessageEvent> {
    return this.work.ticks('sse-sync', 5, 20, 4).pipe(map((n) => ({ data: tick(n) })));
  }

  @Sse('sse-async')
  @Limited('sse-async')
  sseAsync(): Promise<Observable<MessageEvent>> {
    return this.work.eventsLater('sse-async');
  }

  @Get('file')
  @Limited('file')
  file(@Res({ passthrough: true }) res: PassthroughResponse) {
    return this.work.file('file', [15, 40], res);
  }
}

export const HTTP_CONTROLLERS = [
  OuterTimeoutController,
  OuterFallbackController,
  OuterRetryController,
  OuterTimeoutRetryController,
  OuterCacheController,
  OuterRaceController,
  OuterTakeController,
  GlobalTimeoutController,
  InnerTimeoutController,
  InnerTimeoutFileController,
  InnerFallbackController,
  InnerRetryController,
  InnerTimeoutRetryController,
  InnerCacheController,
  InnerRaceController,
  InnerTakeController,
  PlainController,
];

// ---------------------------------------------------------------------------------------------
// WebSocket and RPC

export const WS_PATH = '/matrix-ws';

/** What WebSocket and RPC clients send: an object, so interceptor and handler share it. */
export interface Message {
  id: string;
}

/**
 * Method decorators apply bottom-up, each appending its interceptor: the one written lower runs
 * outside. So `@UseInterceptors(X)` above `@Limited` puts X inside the slot, below it outside.
 */
@WebSocketGateway({ path: WS_PATH })
export class MatrixGateway implements OnGatewayConnection {
  constructor(private readonly work: Work) {}

  /**
   * NestJS 11's exception filter `emit`s 'exception' on the server-side socket, which a `ws`
   * client never sees (NestJS 12 sends it). Forward it, so the suite checks the same on both.
   */
  handleConnection(client: WebSocket) {
    client.on('exception', (data: unknown) =>
      client.send(JSON.stringify({ event: 'exception', data })),
    );
  }

  @SubscribeMessage('ws-plain')
  @Limited('ws-plain')
  plain(@MessageBody() message: Message) {
    return this.work.task('ws-plain', WORK, { event: 'done', data: message.id });
  }

  @SubscribeMessage('ws-inner-timeout')
  @UseInterceptors(TimeoutTo504)
  @Limited('ws-inner-timeout')
  innerTimeout(@MessageBody() message: Message) {
    const done = { event: 'done', data: message.id };
    return this.work.task('ws-inner-timeout', SLOW, done, { after: message });
  }

  @SubscribeMessage('ws-outer-timeout')
  @Limited('ws-outer-timeout')
  @UseInterceptors(TimeoutTo504)
  outerTimeout(@MessageBody() message: Message) {
    const done = { event: 'done', data: message.id };
    return this.work.task('ws-outer-timeout', SLOW, done, { after: message });
  }

  @SubscribeMessage('ws-stream')
  @Limited('ws-stream')
  stream(@MessageBody() { id }: Message) {
    return this.work
      .ticks('ws-stream', 5, 15, 4)
      .pipe(map((n) => ({ event: 'tick', data: { id, n, last: n === 3 } })));
  }
}

@Controller()
export class RpcPlainController {
  constructor(private readonly work: Work) {}

  @MessagePattern('rpc-plain')
  @Limited('rpc-plain')
  plain(@Payload() { id }: Message) {
    return this.work.task('rpc-plain', WORK, `done ${id}`);
  }
}

@Controller()
@Limited('rpc-inner-timeout')
export class RpcInnerTimeoutController {
  constructor(private readonly work: Work) {}

  @MessagePattern('rpc-inner-timeout')
  @UseInterceptors(TimeoutTo504)
  innerTimeout(@Payload() message: Message) {
    return this.work.task('rpc-inner-timeout', SLOW, `done ${message.id}`, { after: message });
  }
}

@Controller()
@UseInterceptors(TimeoutTo504)
export class RpcOuterTimeoutController {
  constructor(private readonly work: Work) {}

  @MessagePattern('rpc-outer-timeout')
  @Limited('rpc-outer-timeout')
  outerTimeout(@Payload() message: Message) {
    return this.work.task('rpc-outer-timeout', SLOW, `done ${message.id}`, { after: message });
  }
}

export const RPC_CONTROLLERS = [
  RpcPlainController,
  RpcInnerTimeoutController,
  RpcOuterTimeoutController,
];
