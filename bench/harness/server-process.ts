import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

/** What a bench server reports about itself (see servers/main.ts). */
export interface ServerStats {
  gauge?: {
    limit: number;
    inFlight: number;
    queued: number;
    admitted: number;
    rejected: number;
    timedOut: number;
    aborted: number;
  };
  /** Handler invocations running now, and the most ever seen at once (counted by the handler). */
  handler: { running: number; peak: number; calls: number };
  /** Heap used after a full GC (only when asked for with `gc`). */
  heapUsed?: number;
  /** `process.getActiveResourcesInfo()`: the handles and timers keeping the process alive. */
  resources: string[];
  /** p99 of the server's event-loop delay since the last peak reset (ms). */
  loopDelayP99Ms: number;
}

/** Which app a server process runs: see servers/apps.ts. */
export interface ServerSpec {
  app: string;
  variant: string;
  adapter?: 'express' | 'fastify';
  /** Extra environment (e.g. BENCH_LIB: another build of the library, for a before/after run). */
  env?: Record<string, string>;
  /** Extra node flags. */
  execArgv?: string[];
}

/**
 * A bench server in its own process (`NODE_ENV=production`), so the load generator and the server
 * never share an event loop. Talks over IPC: the server says where it listens, and answers stats.
 */
export class ServerProcess {
  private nextId = 0;
  private readonly pending = new Map<number, (stats: ServerStats) => void>();
  private readonly pendingControl = new Map<number, () => void>();

  private constructor(
    readonly spec: ServerSpec,
    readonly url: string,
    private readonly child: ChildProcess,
  ) {
    child.on('message', (msg: { type: string; id: number; stats: ServerStats }) => {
      if (msg.type === 'control') {
        this.pendingControl.get(msg.id)?.();
        this.pendingControl.delete(msg.id);
        return;
      }
      if (msg.type !== 'stats') return;
      this.pending.get(msg.id)?.(msg.stats);
      this.pending.delete(msg.id);
    });
  }

  /** Starts the server and resolves once it listens on a loopback port. */
  static start(spec: ServerSpec): Promise<ServerProcess> {
    const child = fork(join(__dirname, '..', 'servers', 'main.js'), [], {
      env: {
        ...process.env,
        NODE_ENV: 'production',
        BENCH_APP: spec.app,
        BENCH_VARIANT: spec.variant,
        BENCH_ADAPTER: spec.adapter ?? 'express',
        ...spec.env,
      },
      execArgv: ['--expose-gc', ...(spec.execArgv ?? [])],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('did not start within 30 s')), 30_000);
      const fail = (error: Error) => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(new Error(`bench server ${describe(spec)}: ${error.message}`));
      };
      child.once('error', fail);
      child.once('exit', (code) => fail(new Error(`exited with ${code} before listening`)));
      child.once('message', (msg: { type: string; url: string }) => {
        if (msg.type !== 'ready')
          return fail(new Error(`unexpected message ${JSON.stringify(msg)}`));
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.removeAllListeners('error');
        resolve(new ServerProcess(spec, msg.url, child));
      });
    });
  }

  get name(): string {
    return describe(this.spec);
  }

  /**
   * Counters of the gauge and the handler; with `gc`, heap used after a forced full GC; with
   * `resetPeak`, the handler's peak starts again from what runs now (after reporting it).
   */
  stats(gc = false, resetPeak = false): Promise<ServerStats> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name}: no stats within 10 s`)),
        10_000,
      );
      this.pending.set(id, (stats) => {
        clearTimeout(timer);
        resolve(stats);
      });
      this.child.send({ type: 'stats', id, gc, resetPeak });
    });
  }

  /** Sends an app's run-time command (see `controls` in servers/main.ts); resolves once applied. */
  control(command: string, value: number): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name}: command ${command} not applied within 10 s`)),
        10_000,
      );
      this.pendingControl.set(id, () => {
        clearTimeout(timer);
        resolve();
      });
      this.child.send({ type: 'control', id, command, value });
    });
  }

  /**
   * Polls until the server is idle: nothing in the handler, the gauge empty, and no handler call
   * started for 100 ms (a CPU-bound server may still be chewing on requests its clients abandoned).
   * Gives up after `timeoutMs`; `idle` says which.
   */
  async settle(timeoutMs = 5_000): Promise<{ stats: ServerStats; idle: boolean }> {
    const until = Date.now() + timeoutMs;
    let calls = -1;
    for (;;) {
      const stats = await this.stats();
      const { handler, gauge } = stats;
      const idle =
        handler.running === 0 && handler.calls === calls && !gauge?.inFlight && !gauge?.queued;
      if (idle || Date.now() > until) return { stats, idle };
      calls = handler.calls;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Kills the server (SIGKILL: a control server may hold thousands of abandoned requests). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await exited;
  }
}

function describe(spec: ServerSpec): string {
  return `${spec.app}/${spec.variant}${spec.adapter ? `@${spec.adapter}` : ''}`;
}
