import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import { Injectable, Module, type OnApplicationBootstrap } from '@nestjs/common';
import { ModulesContainer, NestFactory } from '@nestjs/core';
import { whenBootstrapEnds } from './bootstrap-end.hook';

/** Records, in order, the bootstrap hooks that ran and the `done` callbacks. */
const seen: string[] = [];

@Injectable()
class Watcher implements OnApplicationBootstrap {
  constructor(private readonly modules: ModulesContainer) {}

  onApplicationBootstrap(): void {
    seen.push('watcher');
    expect(whenBootstrapEnds(this.modules, () => seen.push('done 1'))).toBe(true);
    expect(whenBootstrapEnds(this.modules, () => seen.push('done 2'))).toBe(true);
  }
}

@Module({ providers: [Watcher] })
class WatcherModule {}

function rootWith(fail: 'none' | 'provider' | 'root'): new () => unknown {
  @Injectable()
  class Later implements OnApplicationBootstrap {
    async onApplicationBootstrap(): Promise<void> {
      await Promise.resolve();
      seen.push('root provider');
      if (fail === 'provider') throw new Error('provider failed');
    }
  }
  @Module({ imports: [WatcherModule], providers: [Later] })
  class Root implements OnApplicationBootstrap {
    onApplicationBootstrap(): void {
      seen.push('root');
      if (fail === 'root') throw new Error('root failed');
    }
  }
  return Root;
}

describe('whenBootstrapEnds', () => {
  it("calls back after every hook, the root module's own included, once each", async () => {
    seen.length = 0;
    const app = await NestFactory.createApplicationContext(rootWith('none'), { logger: false });
    expect(seen).toEqual(['watcher', 'root provider', 'root', 'done 1', 'done 2']);
    await app.close();
  });

  it.each(['provider', 'root'] as const)(
    'does not call back when a later hook (%s) fails the start',
    async (fail) => {
      seen.length = 0;
      await expect(
        NestFactory.createApplicationContext(rootWith(fail), {
          logger: false,
          abortOnError: false,
        }),
      ).rejects.toThrow(`${fail} failed`);
      expect(seen).not.toContain('done 1');
      expect(seen).not.toContain('done 2');
    },
  );

  it('cannot watch without the modules (the caller then takes its own bootstrap as the end)', () => {
    expect(whenBootstrapEnds(undefined, () => undefined)).toBe(false);
  });
});
