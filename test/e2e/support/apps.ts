import type { INestApplication, ModuleMetadata, Type } from '@nestjs/common';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { GaugeRegistry, type Gauge } from '../../../src';

/** The HTTP platforms every e2e suite runs on, for `describe.each`. */
export const PLATFORMS = ['express', 'fastify'] as const;
export type Platform = (typeof PLATFORMS)[number];

/** A started app: its base URL and its gauges. */
export interface Running {
  readonly app: INestApplication;
  readonly url: string;
  /** The registry's gauge `name` (the same object the interceptor uses). */
  gauge(name: string): Gauge;
  close(): Promise<void>;
}

/** A root module from metadata, so each test builds the app it needs. */
export function moduleOf(metadata: ModuleMetadata): Type {
  @Module(metadata)
  class E2eModule {}
  return E2eModule;
}

/** Creates the app on `platform`, listens on a free loopback port and returns its URL. */
export async function startApp(
  platform: Platform,
  module: Type,
  setup?: (app: INestApplication) => void,
): Promise<Running> {
  const adapter = platform === 'express' ? new ExpressAdapter() : new FastifyAdapter();
  // forceCloseConnections: a test that failed with a handler still held must not hang close().
  const app = await NestFactory.create(module, adapter, {
    logger: process.env.E2E_LOG ? ['error'] : false,
    forceCloseConnections: true,
  });
  setup?.(app);
  await app.listen(0, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  const registry = app.get(GaugeRegistry);
  return { app, url, gauge: (name) => registry.get(name), close: () => app.close() };
}
