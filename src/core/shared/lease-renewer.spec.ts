import { describe, expect, it } from '@jest/globals';
import { StoreCommandError } from './command-error';
import type { LeaseBatch, LeaseClient, RenewOutcome } from './lease-client';
import { LeaseRenewer, type LeaseHolder } from './lease-renewer';
import { StoreHealth } from './store-health';

class Lines {
  readonly warnings: string[] = [];
  warn(message: string): void {
    this.warnings.push(message);
  }
  log(): void {}
}

/** A holder that records what the renewer told it. */
class Holder implements LeaseHolder {
  readonly keys;
  readonly configuredLimit = 2;
  readonly followed: number[] = [];
  readonly renewedIds: string[][] = [];
  bootstraps = 0;

  constructor(
    name: string,
    private readonly ids: string[],
  ) {
    this.keys = { leases: `${name}:leases`, limit: `${name}:limit`, channel: `${name}:released` };
  }

  heldLeaseIds(): string[] {
    return [...this.ids];
  }
  renewed(ids: readonly string[]): number {
    this.renewedIds.push([...ids]);
    return 0;
  }
  capStamp(): number {
    return 1;
  }
  follow(limit: number): void {
    this.followed.push(limit);
  }
  retryBootstrap(): void {
    this.bootstraps++;
  }
}

/** Answers each renewal with `answer` (outcomes per batch, or a rejection). */
function clientAnswering(answer: (batches: readonly LeaseBatch[]) => RenewOutcome[]): LeaseClient {
  const refuse = () => Promise.reject(new Error('not used'));
  return {
    acquire: refuse,
    release: refuse,
    syncLimit: refuse,
    setLimit: refuse,
    renew: (batches) => Promise.resolve().then(() => answer(batches)),
  };
}

function setup(holders: Holder[], client: LeaseClient) {
  const lines = new Lines();
  const health = new StoreHealth('Redis test', 'Redis', 60_000, lines, () => undefined);
  health.markUp();
  const renewer = new LeaseRenewer(
    1000,
    10_000,
    () => holders,
    () => client,
    health,
    lines,
    'Redis',
  );
  return { renewer, health, lines };
}

const wrongType = () =>
  new StoreCommandError(
    'backpressureRenew',
    'WRONGTYPE Operation against a key holding the wrong kind of value',
  );

describe('LeaseRenewer', () => {
  it('handles each gauge on its own when one gauge’s script fails', async () => {
    const broken = new Holder('broken', ['b1']);
    const healthy = new Holder('healthy', ['h1', 'h2']);
    const client = clientAnswering((batches) =>
      batches.map(({ keys }) =>
        keys.leases === 'broken:leases' ? wrongType() : { readded: 2, limit: 5 },
      ),
    );
    const { renewer, health, lines } = setup([broken, healthy], client);

    await renewer.renewNow();
    await renewer.renewNow();

    expect(healthy.followed).toEqual([5, 5]); // the cap it read is applied
    expect(broken.followed).toEqual([]);
    expect(broken.renewedIds).toEqual([['b1'], ['b1']]);
    expect(healthy.renewedIds).toEqual([
      ['h1', 'h2'],
      ['h1', 'h2'],
    ]);
    expect(health.state).toBe('up');
    expect(lines.warnings.filter((line) => line.includes('backpressureRenew'))).toHaveLength(1);
    expect(lines.warnings.filter((line) => line.includes('added back'))).toEqual([
      expect.stringMatching(/^2 lease\(s\)/),
      expect.stringMatching(/^2 lease\(s\)/),
    ]);
  });

  it('still takes a failed round trip for an outage', async () => {
    const holders = [new Holder('a', ['a1']), new Holder('b', [])];
    const client = clientAnswering(() => {
      throw new Error('Connection is closed.');
    });
    const { renewer, health } = setup(holders, client);

    await renewer.renewNow();

    expect(health.state).toBe('down');
    expect(holders.map((holder) => holder.renewedIds)).toEqual([[['a1']], [[]]]);
    expect(holders.map((holder) => holder.followed)).toEqual([[], []]);
    expect(holders.map((holder) => holder.bootstraps)).toEqual([0, 0]);
  });

  it('lets every gauge retry its bootstrap once per answered round', async () => {
    const holders = [new Holder('a', []), new Holder('b', [])];
    const client = clientAnswering((batches) =>
      batches.map((_, i) => (i === 0 ? wrongType() : { readded: 0, limit: 2 })),
    );
    const { renewer } = setup(holders, client);

    await renewer.renewNow();
    await renewer.renewNow();

    expect(holders.map((holder) => holder.bootstraps)).toEqual([2, 2]);
  });
});
