import 'reflect-metadata';
import { afterEach, describe, expect, it } from '@jest/globals';
import { Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiOkResponse, ApiResponse, DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { BackpressureModule, BackpressureRefusal, Limited, Unlimited } from '../../src';
import { RedisGaugeStore } from '../../src/redis';
import { REDIS_URL, uniquePrefix } from '../redis/support/redis-env';
import { Logs } from '../redis/support/helpers';
import { until } from '../support/wait';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { Probe } from './support/probe';

/*
 * With @nestjs/swagger installed, @Limited routes document their refusals in the document swagger
 * generates (SwaggerModule.createDocument), with nothing added by the user: 429 (503 when the
 * gauge's store can be down) with the BackpressureRefusal body and the Retry-After header.
 */

@Controller('method')
class MethodController {
  constructor(private readonly probe: Probe) {}

  @Get('limited')
  @Limited('reports')
  async limited() {
    await this.probe.enter('limited');
    return 'ok';
  }

  @Limited('reports')
  @Post('created')
  created() {
    return 'created';
  }

  @Post('accepted')
  @HttpCode(202)
  @Limited('reports')
  accepted() {
    return 'accepted';
  }

  @Get('free')
  free() {
    return 'free';
  }

  @Get('own-429')
  @Limited('reports')
  @ApiResponse({ status: 429, description: 'Our own words' })
  own429() {
    return 'own';
  }

  @ApiOkResponse({ description: 'The report' })
  @Limited('reports')
  @Get('documented')
  documented() {
    return 'documented';
  }

  @Get('shared')
  @Limited('shared')
  shared() {
    return 'shared';
  }
}

@Controller('class')
@Limited('reports')
class ClassController {
  @Get('work')
  work() {
    return 'work';
  }

  @Get('health')
  @Unlimited()
  health() {
    return 'ok';
  }

  @Get('export')
  @Limited('shared')
  export() {
    return 'export';
  }
}

@Controller('class-own')
@Limited('shared')
@ApiResponse({ status: 429, description: 'Class words: slow down' })
@ApiResponse({ status: 503, description: 'Class words: down' })
class OwnRefusalsController {
  @Get('work')
  work() {
    return 'work';
  }

  @Get('own-429')
  @ApiResponse({ status: 429, description: 'Method words' })
  own429() {
    return 'own';
  }
}

/** Inherits its parent's class-level `@ApiResponse`s, as swagger reads them. */
@Controller('class-inherited')
class InheritedRefusalsController extends OwnRefusalsController {}

type Json = Record<string, unknown>;
type Operation = { responses: Record<string, Json> };

function operation(document: Json, path: string, method: 'get' | 'post'): Operation {
  const paths = document.paths as Record<string, Record<string, Operation>>;
  const found = paths[path]?.[method];
  if (!found) throw new Error(`no ${method} ${path} in the document`);
  return found;
}

const REF = { $ref: '#/components/schemas/BackpressureRefusal' };

function expectRefusal(response: Json | undefined, status: 429 | 503): void {
  expect(response).toMatchObject({
    description: expect.stringContaining('back-pressure') as unknown,
    headers: { 'Retry-After': { schema: { type: 'integer', minimum: 0 } } },
    content: {
      'application/json': { schema: REF, example: { statusCode: status } },
    },
  });
}

describe.each(PLATFORMS)('OpenAPI documentation of refusals on %s', (platform: Platform) => {
  let probe: Probe;
  let running: Running | undefined;
  const prefix = uniquePrefix('openapi');

  async function document(sharedStore: 'memory' | 'redis', openApi?: boolean): Promise<Json> {
    probe = new Probe();
    running = await startApp(
      platform,
      moduleOf({
        imports: [
          BackpressureModule.forRoot({
            ...(openApi !== undefined && { openApi }),
            gauges: {
              reports: { limit: 1, retryAfterSeconds: 3 },
              shared: {
                limit: 1,
                ...(sharedStore === 'redis' && {
                  store: new RedisGaugeStore({
                    redis: REDIS_URL,
                    keyPrefix: prefix,
                    logger: new Logs(),
                  }),
                }),
              },
            },
          }),
        ],
        controllers: [
          MethodController,
          ClassController,
          OwnRefusalsController,
          InheritedRefusalsController,
        ],
        providers: [{ provide: Probe, useValue: probe }],
      }),
    );
    const config = new DocumentBuilder().setTitle('test').build();
    return JSON.parse(JSON.stringify(SwaggerModule.createDocument(running.app, config))) as Json;
  }

  afterEach(async () => {
    probe?.openAll();
    await running?.close();
    running = undefined;
  });

  it('documents a method-level @Limited route: 429, its success response kept', async () => {
    const doc = await document('memory');
    const { responses } = operation(doc, '/method/limited', 'get');
    expect(Object.keys(responses).sort()).toEqual(['200', '429']);
    expectRefusal(responses['429'], 429);
    expect(responses['429']?.headers).toMatchObject({ 'Retry-After': { schema: { example: 3 } } });
    expect(Object.keys(operation(doc, '/method/created', 'post').responses).sort()).toEqual([
      '201',
      '429',
    ]);
    expect(Object.keys(operation(doc, '/method/accepted', 'post').responses).sort()).toEqual([
      '202',
      '429',
    ]);
    expect(operation(doc, '/method/free', 'get').responses).toEqual({
      '200': { description: '' },
    });
  });

  it('adds one BackpressureRefusal component: the body, with every reason', async () => {
    const doc = await document('memory');
    const schemas = (doc.components as { schemas: Record<string, Json> }).schemas;
    expect(schemas.BackpressureRefusal).toMatchObject({
      type: 'object',
      properties: {
        statusCode: { type: 'integer', enum: [429, 503] },
        message: { type: 'string' },
        error: { type: 'string', enum: ['Too Many Requests', 'Service Unavailable'] },
        reason: {
          type: 'string',
          enum: [
            'full',
            'queue-full',
            'queue-timeout',
            'shed-delay',
            'shed-priority',
            'key-over-share',
            'shed-pressure',
            'aborted',
            'unavailable',
          ],
        },
      },
    });
    expect([...(schemas.BackpressureRefusal?.required as string[])].sort()).toEqual([
      'error',
      'message',
      'reason',
      'statusCode',
    ]);
  });

  it('documents every route of a class-level @Limited, not its @Unlimited() one', async () => {
    const doc = await document('memory');
    const work = operation(doc, '/class/work', 'get').responses;
    expect(Object.keys(work).sort()).toEqual(['200', '429']);
    expectRefusal(work['429'], 429);
    expect(operation(doc, '/class/health', 'get').responses).toEqual({
      '200': { description: '' },
    });
  });

  it("keeps the route's own 429 and its other responses", async () => {
    const doc = await document('memory');
    const own = operation(doc, '/method/own-429', 'get').responses;
    // The route documents its responses itself: swagger infers no 200, nor does this.
    expect(own).toEqual({ '429': { description: 'Our own words' } });
    const documented = operation(doc, '/method/documented', 'get').responses;
    expect(Object.keys(documented).sort()).toEqual(['200', '429']);
    expect(documented['200']).toEqual({ description: 'The report' });
  });

  it.each(['memory', 'redis'] as const)(
    'keeps a class-level @ApiResponse 429 / 503 (%s store), inherited ones too',
    async (store) => {
      const doc = await document(store);
      for (const base of ['/class-own', '/class-inherited']) {
        expect(operation(doc, `${base}/work`, 'get').responses).toEqual({
          '200': { description: '' },
          '429': { description: 'Class words: slow down' },
          '503': { description: 'Class words: down' },
        });
        expect(operation(doc, `${base}/own-429`, 'get').responses).toEqual({
          '429': { description: 'Method words' },
          '503': { description: 'Class words: down' },
        });
      }
    },
  );

  it('documents 503 too where the gauge is counted in Redis (a store that can be down)', async () => {
    const doc = await document('redis');
    const shared = operation(doc, '/method/shared', 'get').responses;
    expect(Object.keys(shared).sort()).toEqual(['200', '429', '503']);
    expectRefusal(shared['429'], 429);
    expectRefusal(shared['503'], 503);
    expect(shared['503']).toMatchObject({
      content: { 'application/json': { example: { reason: 'unavailable' } } },
    });
    expect(Object.keys(operation(doc, '/class/export', 'get').responses).sort()).toEqual([
      '200',
      '429',
      '503',
    ]);
    // An in-memory gauge of the same app: no 503.
    expect(Object.keys(operation(doc, '/class/work', 'get').responses).sort()).toEqual([
      '200',
      '429',
    ]);
  });

  it('follows the store of the app being bootstrapped, taking back what it wrote before', async () => {
    await document('redis');
    await running?.close();
    running = undefined;
    const doc = await document('memory');
    expect(Object.keys(operation(doc, '/method/shared', 'get').responses).sort()).toEqual([
      '200',
      '429',
    ]);
    expect(operation(doc, '/method/own-429', 'get').responses).toEqual({
      '429': { description: 'Our own words' },
    });
  });

  it('with openApi: false documents nothing, and takes back what an earlier app wrote', async () => {
    await document('redis');
    await running?.close();
    running = undefined;
    const doc = await document('memory', false);
    for (const [path, method] of [
      ['/method/limited', 'get'],
      ['/method/shared', 'get'],
      ['/class/work', 'get'],
    ] as const) {
      expect(Object.keys(operation(doc, path, method).responses)).toEqual(['200']);
    }
    expect(operation(doc, '/method/own-429', 'get').responses).toEqual({
      '429': { description: 'Our own words' },
    });
    expect(
      (doc.components as { schemas?: Record<string, Json> }).schemas?.BackpressureRefusal,
    ).toBeUndefined();
    // The routes are limited all the same.
    const held = fetch(`${running!.url}/method/limited`);
    await until(() => probe.entered.length === 1, 'the first request holds the slot');
    expect((await fetch(`${running!.url}/method/limited`)).status).toBe(429);
    probe.pass('limited');
    expect((await held).status).toBe(200);
  });

  it('documents what a refused request really receives', async () => {
    const doc = await document('memory');
    const held = fetch(`${running!.url}/method/limited`);
    await until(() => probe.entered.length === 1, 'the first request holds the slot');
    const refused = await fetch(`${running!.url}/method/limited`);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    const body = (await refused.json()) as Json;
    const schema = (doc.components as { schemas: Record<string, Json> }).schemas
      .BackpressureRefusal as { properties: Record<string, { enum?: unknown[] }> };
    expect(Object.keys(body).sort()).toEqual(Object.keys(schema.properties).sort());
    expect(schema.properties.reason?.enum).toContain(body.reason);
    expect(schema.properties.statusCode?.enum).toContain(body.statusCode);
    probe.pass('limited');
    expect((await held).status).toBe(200);
  });
});

it('BackpressureRefusal is also a type for the body', () => {
  const body: BackpressureRefusal = {
    statusCode: 429,
    message: 'Too many requests',
    error: 'Too Many Requests',
    reason: 'queue-timeout',
  };
  expect(body.reason).toBe('queue-timeout');
});
