import { HttpStatus, RequestMethod } from '@nestjs/common';
import { HTTP_CODE_METADATA, METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { LIMITED_GAUGE } from './backpressure.constants';
import { BackpressureRefusal } from './backpressure-refusal.schema';
import type { Gauge } from './core/gauge.interface';
import { PressureGauge } from './core/pressure-gauge';

/*
 * The OpenAPI documentation of refusals: at bootstrap (RouteGaugesExplorer), every HTTP route a
 * `@Limited` covers gets a 429 response (and a 503 when its gauge is counted in a store that can
 * be down), with the `BackpressureRefusal` body and the `Retry-After` header, in the metadata
 * `@nestjs/swagger`'s `@ApiResponse` writes. `SwaggerModule.createDocument()`, which runs after
 * `NestFactory.create()`, reads it. Nothing here imports swagger: without it, the metadata is
 * never read.
 *
 * Written at bootstrap, not by the decorator, because only then is everything known: the method's
 * own and its class's `@Limited`, `@Unlimited()`, the user's `@ApiResponse`s (applied in any
 * order), and the gauge's store. A route's or its class's own 429 / 503 documentation always wins.
 */

/** `DECORATORS.API_RESPONSE` of `@nestjs/swagger`: status → response options, on the handler. */
export const API_RESPONSE_METADATA = 'swagger/apiResponse';

/** The static `@nestjs/swagger`'s CLI plugin adds to classes it compiled (see `pluginDocuments`). */
const PLUGIN_FACTORY = '_OPENAPI_METADATA_FACTORY';
/** The plugin's route options that are not about the success response. */
const NOT_RESPONSE_OPTIONS = new Set(['summary', 'deprecated', 'tags', 'description', 'responses']);

/** One response as `@ApiResponse` stores it (status key aside). */
type ResponseDoc = Record<string, unknown>;
type ResponseDocs = Record<string, ResponseDoc>;

/**
 * What this process wrote on each handler, so a later bootstrap (another app, another store for
 * the same controller class) takes back its own entries and nothing else.
 */
const written = new WeakMap<object, ResponseDocs>();

type Class = abstract new (...args: never[]) => unknown;

/** Documents the refusals of every `@Limited` HTTP route of `controllers`. */
export function documentRefusals(
  controllers: Iterable<unknown>,
  gaugeOf: (name: string) => Gauge | undefined,
): void {
  const seen = new Set<unknown>();
  for (const controller of controllers) {
    if (typeof controller !== 'function' || seen.has(controller)) continue;
    seen.add(controller);
    const cls = controller as Class;
    const className: unknown = Reflect.getMetadata(LIMITED_GAUGE, cls);
    // Swagger merges the class's `@ApiResponse`s (its own and inherited) under each route's: a
    // route-level 429 written here would hide the class's.
    const classDocs: unknown = Reflect.getMetadata(API_RESPONSE_METADATA, cls);
    const classDocumented = isRecord(classDocs)
      ? new Set(Object.keys(classDocs))
      : new Set<string>();
    for (const [key, handler] of routesOf(cls)) {
      // As the interceptor decides: the method's name, or `@Unlimited()`'s false, over the class's.
      const own: unknown = Reflect.getMetadata(LIMITED_GAUGE, handler);
      const name = own !== undefined ? own : className;
      const gauge = typeof name === 'string' ? gaugeOf(name) : undefined;
      document(cls, key, handler, gauge, classDocumented);
    }
  }
}

/** Rewrites one handler's refusal entries: takes back this process's, adds the gauge's. */
function document(
  cls: Class,
  key: string,
  handler: object,
  gauge: Gauge | undefined,
  classDocumented: ReadonlySet<string>,
): void {
  const before = written.get(handler);
  const current: unknown = Reflect.getMetadata(API_RESPONSE_METADATA, handler);
  const docs: ResponseDocs = isRecord(current) ? { ...(current as ResponseDocs) } : {};
  if (before) {
    for (const [status, entry] of Object.entries(before)) {
      if (docs[status] === entry) delete docs[status];
    }
  }
  const userDocumented = Object.keys(docs).length > 0;
  const ours: ResponseDocs = {};
  if (gauge) {
    const add = (status: string, entry: ResponseDoc) => {
      // The route, or its class, documents it itself.
      if (docs[status] !== undefined || classDocumented.has(status)) return;
      docs[status] = ours[status] = entry;
    };
    add(String(HttpStatus.TOO_MANY_REQUESTS), tooManyRequests(gauge));
    if (!(gauge instanceof PressureGauge))
      add(String(HttpStatus.SERVICE_UNAVAILABLE), unavailable(gauge));
    // Swagger infers a route's success response only when it has no response metadata at all:
    // keep that inference (unless its CLI plugin will document the route, which it does only
    // while no success response is there).
    if (!userDocumented && Object.keys(ours).length > 0 && !pluginDocuments(cls, key)) {
      const status = String(successStatus(handler));
      docs[status] = ours[status] = { description: '' };
    }
  }
  if (Object.keys(ours).length > 0) written.set(handler, ours);
  else written.delete(handler);
  if (!before && Object.keys(ours).length === 0) return;
  if (Object.keys(docs).length > 0) Reflect.defineMetadata(API_RESPONSE_METADATA, docs, handler);
  else if (current !== undefined) Reflect.deleteMetadata(API_RESPONSE_METADATA, handler);
}

function tooManyRequests(gauge: Gauge): ResponseDoc {
  // One example; the schema's `reason` enum lists every reason.
  return {
    description:
      'Refused by back-pressure: no slot free in time (at once, or within the wait queue). ' +
      'Retry after the Retry-After seconds.',
    type: BackpressureRefusal,
    headers: retryAfter(gauge),
    example: {
      statusCode: 429,
      message: 'Too many requests',
      error: 'Too Many Requests',
      reason: 'full',
    },
  };
}

function unavailable(gauge: Gauge): ResponseDoc {
  return {
    description:
      "Refused by back-pressure: the shared store that counts this route's slots is unreachable " +
      'and its gauge fails closed. Retry after the Retry-After seconds.',
    type: BackpressureRefusal,
    headers: retryAfter(gauge),
    example: {
      statusCode: 503,
      message: 'Service unavailable',
      error: 'Service Unavailable',
      reason: 'unavailable',
    },
  };
}

function retryAfter(gauge: Gauge): ResponseDoc {
  return {
    'Retry-After': {
      description: 'Seconds after which the client may try again',
      schema: { type: 'integer', minimum: 0, example: gauge.retryAfterSeconds },
    },
  };
}

/** The status swagger documents for a route without response metadata (its `getStatusCode`). */
function successStatus(handler: object): number {
  const code: unknown = Reflect.getMetadata(HTTP_CODE_METADATA, handler);
  if (typeof code === 'number') return code;
  const method: unknown = Reflect.getMetadata(METHOD_METADATA, handler);
  return method === RequestMethod.POST ? HttpStatus.CREATED : HttpStatus.OK;
}

/**
 * Whether swagger's CLI plugin metadata (compiled into the class) documents the route's
 * responses: swagger then adds its success response itself, as it does for routes with no
 * success response (the 429 added here is not one).
 */
function pluginDocuments(cls: Class, key: string): boolean {
  let proto: unknown = cls.prototype;
  while (proto !== null && typeof proto === 'object' && proto !== Object.prototype) {
    const owner = (proto as { constructor?: unknown }).constructor;
    if (
      typeof owner === 'function' &&
      Object.prototype.hasOwnProperty.call(owner, PLUGIN_FACTORY) &&
      Object.prototype.hasOwnProperty.call(proto, key)
    ) {
      const factory: unknown = (owner as unknown as Record<string, unknown>)[PLUGIN_FACTORY];
      const all: unknown = typeof factory === 'function' ? factory.call(owner) : undefined;
      const entry: unknown = isRecord(all) ? all[key] : undefined;
      if (isRecord(entry)) {
        const { responses } = entry;
        if (Object.keys(entry).some((option) => !NOT_RESPONSE_OPTIONS.has(option))) return true;
        if (Array.isArray(responses) && responses.length > 0) return true;
      }
    }
    proto = Object.getPrototypeOf(proto);
  }
  return false;
}

/** The HTTP route handlers of a controller, most derived first, read through descriptors. */
function* routesOf(cls: Class): Iterable<[string, object]> {
  const keys = new Set<string>();
  let proto: unknown = cls.prototype;
  while (proto !== null && typeof proto === 'object' && proto !== Object.prototype) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (key === 'constructor' || keys.has(key)) continue;
      keys.add(key);
      const { value } = Object.getOwnPropertyDescriptor(proto, key) ?? {};
      if (typeof value === 'function' && Reflect.getMetadata(PATH_METADATA, value) !== undefined) {
        yield [key, value as object];
      }
    }
    proto = Object.getPrototypeOf(proto);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
