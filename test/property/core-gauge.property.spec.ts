import 'reflect-metadata';
import { describe, expect, it, jest } from '@jest/globals';
import fc from 'fast-check';
import { GaugeAbortedError, GaugeExhaustedError, PressureGauge, type Release } from '../../src';
import { flush } from '../support/wait';
import { GaugeModel, type Caller, type ProcKind } from './support/gauge-model';

// Under the fake timers, flush() (setImmediate) stays real: it lets every pending promise
// callback run.

// ---------------------------------------------------------------------------------------------
// Core: random operations against a PressureGauge, checked against a model after every step.
// ---------------------------------------------------------------------------------------------

type Op =
  | { op: 'acquire'; signal: boolean }
  | { op: 'process'; signal: boolean; kind: ProcKind }
  | { op: 'tryAcquire' }
  | { op: 'preAborted'; viaProcess: boolean }
  | { op: 'release'; pick: number; twice: boolean; fail: boolean }
  | { op: 'staleRelease'; pick: number }
  | { op: 'abort'; pick: number }
  | { op: 'advance'; percent: number }
  | { op: 'toDeadline' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant('acquire' as const), signal: fc.boolean() }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('process' as const),
      signal: fc.boolean(),
      kind: fc.constantFrom<ProcKind>(
        'sync-ok',
        'sync-throw',
        'async-ok',
        'async-reject',
        'pending',
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('tryAcquire' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('preAborted' as const), viaProcess: fc.boolean() }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('release' as const),
      pick: fc.nat(),
      twice: fc.boolean(),
      fail: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('staleRelease' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('abort' as const), pick: fc.nat() }) },
  {
    weight: 3, // in percent of the queue timeout, so waiters end up with distinct, interleaved deadlines
    arbitrary: fc.record({
      op: fc.constant('advance' as const),
      percent: fc.integer({ min: 0, max: 110 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('toDeadline' as const) }) },
);

/** An operation, and whether the next one follows in the same tick (no promise callbacks between). */
const stepArb = fc.tuple(
  opArb,
  fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
);

const configArb = fc.record({
  limit: fc.integer({ min: 1, max: 5 }),
  queue: fc.option(
    fc.record({
      size: fc.integer({ min: 0, max: 6 }),
      timeoutMs: fc.integer({ min: 1, max: 200 }),
    }),
    { nil: undefined },
  ),
});

type ScenarioConfig = typeof configArb extends fc.Arbitrary<infer C> ? C : never;

/** Runs one generated scenario; any failed expectation fails (and shrinks) the property. */
async function runScenario(config: ScenarioConfig, steps: Array<[Op, boolean]>) {
  const gauge = new PressureGauge({ name: 'prop', limit: config.limit, queue: config.queue });
  const model = new GaugeModel(config.limit, config.queue?.size ?? 0, config.queue?.timeoutMs ?? 0);
  const callers: Caller[] = [];
  /** Hand-offs as seen: promise callbacks run in the order the gauge resolved them. */
  const observedHandOffs: number[] = [];

  const newCaller = (kind: Caller['kind'], signal: boolean): Caller => {
    const id = callers.length;
    const c: Caller = {
      id,
      kind,
      controller: signal ? new AbortController() : undefined,
      error: new Error(`caller ${id}`),
      state: 'refused',
      deadline: 0,
      waited: false,
      fails: false,
      granted: false,
    };
    callers.push(c);
    return c;
  };
  const fail = (c: Caller, what: string): never => {
    throw new Error(`caller ${c.id} (${c.kind}; model: ${c.state}, ${c.expected}): ${what}`);
  };
  /** Grants seen after the caller was refused (aborted, timed out) or a second time. */
  const violations: string[] = [];
  /** The gauge gave `c` a slot (runs in a promise callback, where a throw would be lost). */
  const granted = (c: Caller, release?: Release) => {
    if (c.granted || c.verified) violations.push(`caller ${c.id} granted after it was settled`);
    c.granted = true;
    c.release = release;
    if (c.waited) observedHandOffs.push(c.id);
  };
  const fnFor = (c: Caller) => (): unknown => {
    granted(c);
    switch (c.kind) {
      case 'sync-ok':
        return c.id;
      case 'sync-throw':
        throw c.error;
      case 'async-ok':
        return Promise.resolve(c.id);
      case 'async-reject':
        return Promise.reject(c.error);
      default:
        return new Promise((resolve, reject) => (c.work = { resolve, reject }));
    }
  };
  /** Callers holding a slot that the test ends; a hand-off is only seen once promises have run. */
  const holders = () =>
    callers.filter(
      (c) => c.state === 'holding' && (c.release !== undefined || c.work !== undefined),
    );

  const finishHolder = (c: Caller, twice: boolean, fail: boolean) => {
    if (c.kind === 'hold') {
      expect(c.release).toBeDefined();
      c.release!();
      if (twice) c.release!();
    } else {
      expect(c.work).toBeDefined();
      c.fails = fail;
      if (fail) c.work!.reject(c.error);
      else c.work!.resolve(c.id);
      return model.finishLater(c);
    }
    model.finish(c);
  };

  /** What must hold at every instant, even before promise callbacks have run. */
  const checkNow = () => {
    const actual = {
      inFlight: gauge.inFlight,
      queued: gauge.queued,
      admitted: gauge.admitted,
      rejected: gauge.rejected,
      timedOut: gauge.timedOut,
      aborted: gauge.aborted,
      timers: jest.getTimerCount(),
    };
    const expected = {
      inFlight: model.inFlight,
      queued: model.queue.length,
      admitted: model.admitted,
      rejected: model.rejected,
      timedOut: model.timedOut,
      aborted: model.aborted,
      timers: model.queue.length > 0 ? 1 : 0, // one deadline timer while anyone waits, else none
    };
    if (JSON.stringify(actual) !== JSON.stringify(expected)) expect(actual).toEqual(expected);
    if (gauge.inFlight > config.limit) throw new Error(`inFlight ${gauge.inFlight} > limit`);
  };

  /** Everything, once promise callbacks have run: who got a slot, in which order, how each ended. */
  const check = () => {
    checkNow();
    expect(violations).toEqual([]);
    if (observedHandOffs.join() !== model.handOffs.join()) {
      expect(observedHandOffs).toEqual(model.handOffs);
    }
    for (const c of callers) {
      if (c.verified) continue;
      if (c.granted !== (c.expected === 'granted')) fail(c, `granted is ${c.granted}`);
      if (c.state === 'queued' || c.state === 'holding') {
        if (c.settled) fail(c, 'settled while it waits or holds a slot');
        continue;
      }
      const error = c.thrown ?? c.settled?.error;
      if (c.expected === 'aborted' && !(error instanceof GaugeAbortedError)) {
        fail(c, `expected GaugeAbortedError, got ${String(error)}`);
      }
      if (c.expected === 'full' || c.expected === 'queue-full' || c.expected === 'timeout') {
        const exhausted = error instanceof GaugeExhaustedError ? error : undefined;
        if (exhausted?.reason !== c.expected || exhausted.gauge !== 'prop') {
          fail(c, `expected GaugeExhaustedError(${c.expected}), got ${String(error)}`);
        }
      }
      if (c.state === 'done' && c.kind !== 'hold') {
        const ok =
          c.kind === 'sync-ok' || c.kind === 'async-ok' || (c.kind === 'pending' && !c.fails);
        const want = ok ? { ok: true, value: c.id } : { ok: false, error: c.error };
        if (
          c.settled?.ok !== want.ok ||
          c.settled.value !== want.value ||
          c.settled.error !== want.error
        ) {
          fail(c, `process() settled ${JSON.stringify(c.settled)}`);
        }
      }
      c.verified = true;
    }
  };

  for (const [op, sameTick] of steps) {
    switch (op.op) {
      case 'acquire': {
        const c = newCaller('hold', op.signal);
        model.admit(c);
        let slot: Release | Promise<Release> | undefined;
        try {
          slot = gauge.acquire({ signal: c.controller?.signal });
        } catch (error) {
          c.thrown = error;
        }
        if (c.state === 'holding') {
          expect(typeof slot).toBe('function');
          granted(c, slot as Release);
        } else if (c.state === 'queued') {
          expect(slot).toBeInstanceOf(Promise);
          (slot as Promise<Release>).then(
            (release) => granted(c, release),
            (error: unknown) => (c.settled = { ok: false, error }),
          );
        } else {
          expect(c.thrown).toBeInstanceOf(GaugeExhaustedError);
        }
        break;
      }
      case 'process': {
        const c = newCaller(op.kind, op.signal);
        model.admit(c);
        gauge.process(fnFor(c), { signal: c.controller?.signal }).then(
          (value) => (c.settled = { ok: true, value }),
          (error: unknown) => (c.settled = { ok: false, error }),
        );
        const sync = op.kind === 'sync-ok' || op.kind === 'sync-throw';
        if (sync && c.state === 'holding') model.finishNow(c);
        break;
      }
      case 'tryAcquire': {
        const c = newCaller('hold', false);
        model.tryAdmit(c);
        const release = gauge.tryAcquire();
        if (c.state === 'holding') {
          expect(typeof release).toBe('function');
          granted(c, release);
        } else {
          expect(release).toBeUndefined();
        }
        break;
      }
      case 'preAborted': {
        const c = newCaller('hold', false);
        c.expected = 'aborted';
        const signal = AbortSignal.abort();
        if (op.viaProcess) {
          gauge.process(fnFor(c), { signal: signal }).then(
            () => (c.settled = { ok: true }),
            (error: unknown) => (c.settled = { ok: false, error }),
          );
        } else {
          expect(() => gauge.acquire({ signal: signal })).toThrow(GaugeAbortedError);
          c.thrown = new GaugeAbortedError('prop');
        }
        model.aborted++;
        break;
      }
      case 'release': {
        const list = holders();
        if (list.length > 0) finishHolder(list[op.pick % list.length]!, op.twice, op.fail);
        break;
      }
      case 'staleRelease': {
        const done = callers.filter((c) => c.state === 'done' && c.kind === 'hold');
        if (done.length > 0) done[op.pick % done.length]!.release!();
        break;
      }
      case 'abort': {
        const live = callers.filter((c) => c.controller && !c.controller.signal.aborted);
        if (live.length > 0) {
          const c = live[op.pick % live.length]!;
          c.controller!.abort();
          model.abort(c);
        }
        break;
      }
      case 'advance':
        jest.advanceTimersByTime(Math.round(((config.queue?.timeoutMs ?? 100) * op.percent) / 100));
        model.expire(performance.now());
        break;
      case 'toDeadline': // exactly onto the oldest waiter's deadline: it must expire, no later
        if (model.queue.length > 0) {
          jest.advanceTimersByTime(model.queue[0]!.deadline - performance.now());
          model.expire(performance.now());
        }
        break;
    }
    if (sameTick) {
      checkNow(); // the next operation runs in this same tick, before any hand-off is seen
      continue;
    }
    await flush();
    model.settleAutos();
    check();
  }
  await flush();
  model.settleAutos();
  check();

  // Quiescence: every holder lets go, every waiter is served (or times out), nothing remains.
  for (let list = holders(); list.length > 0; list = holders()) {
    for (const c of list) finishHolder(c, false, false);
    await flush();
    model.settleAutos();
    check();
  }
  jest.advanceTimersByTime((config.queue?.timeoutMs ?? 0) + 1);
  model.expire(performance.now());
  await flush();
  check();
  expect([gauge.inFlight, gauge.queued, jest.getTimerCount()]).toEqual([0, 0, 0]);
  expect(callers.every((c) => c.state === 'done' || c.state === 'refused')).toBe(true);
  expect(gauge.admitted + gauge.rejected + gauge.timedOut + gauge.aborted).toBe(callers.length);
}

describe('property: PressureGauge against a model', () => {
  it('keeps counts, FIFO hand-off and timers right under random operations', async () => {
    await fc.assert(
      fc.asyncProperty(
        configArb,
        fc.array(stepArb, { minLength: 1, maxLength: 60, size: 'max' }),
        async (config, steps) => {
          jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
          try {
            await runScenario(config, steps);
          } finally {
            jest.useRealTimers();
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
