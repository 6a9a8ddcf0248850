import 'reflect-metadata';
import { jest } from '@jest/globals';
import { Controller, Get, Injectable, type ArgumentsHost } from '@nestjs/common';
import {
  BackpressureModule,
  InjectGauge,
  Limited,
  type BackpressureModuleOptions,
  type Gauge,
  type RefusalInfo,
  type RefusalShape,
} from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { json, send, type Reply } from './support/http';
import { Probe } from './support/probe';
import { until } from '../support/wait';

@Injectable()
class ExportService {
  constructor(
    @InjectGauge('exports') private readonly gauge: Gauge,
    private readonly probe: Probe,
  ) {}

  run(): Promise<string> {
    return this.gauge.process(async () => {
      await this.probe.enter('exports');
      return 'exported';
    });
  }
}

@Controller('hook')
class HookController {
  constructor(
    private readonly probe: Probe,
    private readonly exports: ExportService,
  ) {}

  @Get('plain')
  @Limited('plain')
  async plain() {
    await this.probe.enter('plain');
    return 'plain';
  }

  @Get('shaped')
  @Limited('shaped')
  async shaped() {
    await this.probe.enter('shaped');
    return 'shaped';
  }

  @Get('broken')
  @Limited('broken')
  async broken() {
    await this.probe.enter('broken');
    return 'broken';
  }

  @Get('bad')
  @Limited('bad')
  async bad() {
    await this.probe.enter('bad');
    return 'bad';
  }

  @Get('export')
  export() {
    return this.exports.run();
  }
}

/** What the hooks were told, in order, with the request path each saw. */
interface Seen {
  readonly by: string;
  readonly info: RefusalInfo;
  readonly path: string;
}

function pathOf(context: ArgumentsHost): string {
  return context.switchToHttp().getRequest<{ url: string }>().url;
}

/** Refusal shapes that cannot be sent as they are, by the `kind` query of the refused request. */
const BAD_SHAPES: Record<string, () => unknown> = {
  circular: () => {
    const body: Record<string, unknown> = { code: 'BUSY' };
    body['self'] = body;
    return { body };
  },
  bigint: () => ({ body: { code: 'BUSY', left: 10n } }),
  'throwing-toJSON': () => ({
    body: {
      toJSON() {
        throw new Error('toJSON bug');
      },
    },
  }),
  'toJSON-not-an-object': () => ({ body: { toJSON: () => 42 } }),
  'status-200': () => ({ status: 200, body: { ok: true } }),
  'status-500': () => ({ status: 500 }),
  'throwing-getter': () => ({
    get body(): never {
      throw new Error('getter bug');
    },
  }),
  'revoked-proxy': () => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    return proxy;
  },
  'throws-a-null-prototype-object': () => {
    throw Object.create(null) as unknown; // String() of it throws too
  },
  'async-rejecting': () => Promise.reject(new Error('async bug')),
};

function kindOf(context: ArgumentsHost): string {
  return new URL(pathOf(context), 'http://x').searchParams.get('kind') ?? '';
}

function optionsRecordingTo(seen: Seen[]): BackpressureModuleOptions {
  const record = (by: string) => (info: RefusalInfo, context: ArgumentsHost) =>
    void seen.push({ by, info, path: pathOf(context) });
  return {
    onRefusal: record('module'), // observe only: a log line
    gauges: {
      plain: { limit: 1 },
      shaped: {
        limit: 1,
        retryAfterSeconds: 4,
        onRefusal: (info, context) => {
          record('shaped')(info, context);
          return { status: 503, body: { code: 'BUSY', why: info.reason } };
        },
      },
      broken: {
        limit: 1,
        onRefusal: () => {
          throw new Error('hook bug');
        },
      },
      bad: {
        limit: 1,
        retryAfterSeconds: 3,
        onRefusal: (_info, context) => BAD_SHAPES[kindOf(context)]?.() as RefusalShape,
      },
      exports: {
        limit: 1,
        retryAfterSeconds: 7,
        onRefusal: (info, context) => {
          record('exports')(info, context);
          return { message: 'Exports are busy' };
        },
      },
    },
  };
}

describe.each(PLATFORMS)('onRefusal hooks on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running;
  let seen: Seen[];

  /** Holds the gauge's one slot with a request to `path`, then sends another one: the refused. */
  async function refusedBeside(path: string, label: string): Promise<{ refused: Reply }> {
    const holder = send(running.url, path);
    await until(() => probe.entered.includes(label), `${label} holds its slot`);
    const refused = await send(running.url, path).reply;
    probe.pass(label);
    expect((await holder.reply).status).toBe(200);
    return { refused };
  }

  async function start(options: BackpressureModuleOptions | 'async'): Promise<void> {
    const root =
      options === 'async'
        ? BackpressureModule.forRootAsync({ useFactory: () => optionsRecordingTo(seen) })
        : BackpressureModule.forRoot(options);
    running = await startApp(
      platform,
      moduleOf({
        imports: [root],
        controllers: [HookController],
        providers: [ExportService, { provide: Probe, useValue: probe }],
      }),
    );
  }

  beforeEach(() => {
    probe = new Probe();
    seen = [];
  });

  afterEach(async () => {
    probe.openAll();
    await running.close();
  });

  it('observe only: the module hook is told, the client gets the default 429', async () => {
    await start(optionsRecordingTo(seen));
    const { refused } = await refusedBeside('/hook/plain', 'plain');
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(json(refused)).toEqual({
      message: 'Too many requests',
      error: 'Too Many Requests',
      statusCode: 429,
      reason: 'full',
    });
    expect(seen).toEqual([
      {
        by: 'module',
        path: '/hook/plain',
        info: {
          gauge: 'plain',
          reason: 'full',
          status: 429,
          retryAfterSeconds: 1,
          body: json(refused),
          responseStarted: false,
        },
      },
    ]);
  });

  it("a gauge's own hook wins: 503 with its body, Retry-After still the gauge's", async () => {
    await start(optionsRecordingTo(seen));
    const { refused } = await refusedBeside('/hook/shaped', 'shaped');
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('4');
    expect(refused.headers['content-type']).toMatch(/^application\/json/);
    expect(json(refused)).toEqual({ code: 'BUSY', why: 'full' });
    expect(seen.map(({ by }) => by)).toEqual(['shaped']); // not the module's as well
  });

  it('a hook that throws: the default 429, one warning, no slot leaked', async () => {
    await start(optionsRecordingTo(seen));
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      for (let round = 0; round < 2; round++) {
        const { refused } = await refusedBeside('/hook/broken', 'broken');
        expect(refused.status).toBe(429);
        expect(refused.headers['retry-after']).toBe('1');
        expect(json(refused)).toMatchObject({ statusCode: 429, reason: 'full' });
      }
      expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
        "A gauge's onRefusal hook threw Error: hook bug; the default refusal was sent (this and any like it)",
      ]);
    } finally {
      warn.mockRestore();
    }
    expect(running.gauge('broken')).toMatchObject({ inFlight: 0, admitted: 2, rejected: 2 });
  });

  it('gauge.process() refused in a service: GaugeErrorFilter applies the gauge hook', async () => {
    await start(optionsRecordingTo(seen));
    const { refused } = await refusedBeside('/hook/export', 'exports');
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('7');
    expect(json(refused)).toEqual({
      message: 'Exports are busy',
      error: 'Too Many Requests',
      statusCode: 429,
      reason: 'full',
    });
    expect(seen.map(({ by, path, info }) => [by, path, info.gauge])).toEqual([
      ['exports', '/hook/export', 'exports'],
    ]);
  });

  it('hooks from a forRootAsync factory apply the same way', async () => {
    await start('async');
    const { refused } = await refusedBeside('/hook/shaped', 'shaped');
    expect({ status: refused.status, body: json(refused) }).toEqual({
      status: 503,
      body: { code: 'BUSY', why: 'full' },
    });
    const { refused: plain } = await refusedBeside('/hook/plain', 'plain');
    expect(plain.status).toBe(429);
    expect(seen.map(({ by, info }) => [by, info.gauge])).toEqual([
      ['shaped', 'shaped'],
      ['module', 'plain'],
    ]);
  });

  it.each(Object.keys(BAD_SHAPES))(
    'a hook whose answer cannot be sent (%s): the default 429 with Retry-After, no slot leaked',
    async (kind) => {
      await start(optionsRecordingTo(seen));
      const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
      try {
        for (let round = 0; round < 2; round++) {
          const holder = send(running.url, '/hook/bad');
          await until(() => probe.entered.length === round + 1, 'bad holds its slot');
          const refused = await send(running.url, `/hook/bad?kind=${kind}`).reply;
          probe.pass('bad');
          expect((await holder.reply).status).toBe(200);
          expect(refused.status).toBe(429);
          expect(refused.headers['retry-after']).toBe('3');
          expect(json(refused)).toEqual({
            message: 'Too many requests',
            error: 'Too Many Requests',
            statusCode: 429,
            reason: 'full',
          });
        }
        expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
          expect.stringMatching(/^A gauge's onRefusal hook .*; the default refusal was sent/),
        ]);
      } finally {
        warn.mockRestore();
      }
      expect(running.gauge('bad')).toMatchObject({ inFlight: 0, admitted: 2, rejected: 2 });
    },
  );
});
