import { describe, expect, it } from '@jest/globals';
import { GaugeFigures } from '../gauge-events';
import { KeyEntry } from '../partition/key-partitions';
import { WaitList } from '../wait-list';
import { keyedLeaseId, overflowToken, partitionToken, SharedPartitions } from './shared-partitions';

/** What the store's scripts do with a keyed lease id: the partition named at its end. */
function tokenOf(id: string): string | undefined {
  const bytes = Buffer.from(id, 'utf8');
  const match = /#(\d+)$/.exec(id);
  if (match === null) return undefined;
  const stop = bytes.length - match[1]!.length - 1;
  return bytes.subarray(stop - Number(match[1]), stop).toString('utf8');
}

describe('partition names in the store', () => {
  it('keeps keys apart from each other, from digests, overflow partitions and "no key"', () => {
    const keys = ['a', 'o:1', 'u', 'd:1:a:b', 'k:a', '', '{x}', 'x'.repeat(256), 'x'.repeat(257)];
    const tokens = keys.map(partitionToken);
    expect(new Set(tokens).size).toBe(keys.length);
    for (const token of tokens) expect(token === 'u' || token.startsWith('o:')).toBe(false);
    expect(partitionToken('x'.repeat(256))).toBe(`k:${'x'.repeat(256)}`);
    expect(partitionToken('x'.repeat(257))).toMatch(/^d:257:[0-9a-z]+:[0-9a-z]+$/);
  });

  it('stores a key that is not well-formed Unicode by a digest (UTF-8 would merge such keys)', () => {
    expect(partitionToken('\uD800')).toMatch(/^d:1:/);
    expect(partitionToken('\uDC00')).toMatch(/^d:1:/);
    expect(partitionToken('\uD800')).not.toBe(partitionToken('\uDC00'));
    expect(partitionToken('😀')).toBe('k:😀'); // a surrogate pair is well formed
  });

  it('spreads keys over the 64 overflow partitions', () => {
    const buckets = new Set(Array.from({ length: 1000 }, (_, i) => overflowToken(`k:${i}`)));
    expect(buckets.size).toBe(64);
    for (const bucket of buckets) expect(bucket).toMatch(/^o:([0-9]|[1-5][0-9]|6[0-3])$/);
  });

  it('names the partition at the end of a keyed lease id, readable back byte-wise', () => {
    const plain = 'pod#7:Qm3x_aZ0kP1w:1a'; // an instanceId may hold '#': the tail still has colons
    expect(tokenOf(plain)).toBeUndefined();
    for (const key of ['tenant', 'ключ#12', '{x}#3', '\u0000', 'x'.repeat(300), '#9']) {
      const token = partitionToken(key);
      expect(tokenOf(keyedLeaseId(plain, token))).toBe(token);
    }
  });
});

describe('SharedPartitions', () => {
  it('partitions only calls with a key unless option partition is given', () => {
    const bare = new SharedPartitions(undefined, true);
    expect(bare.request(undefined, 'i:n:1')).toBeUndefined();
    expect(bare.request(42, 'i:n:1')).toBeUndefined(); // not a string: no key
    expect(bare.request('t', 'i:n:1')).toMatchObject({
      token: 'k:t',
      id: 'i:n:1#k:t#3',
      limit: 0,
      maxKeys: 10_000,
      fair: true,
    });
    const configured = new SharedPartitions({ limit: 0.5, maxKeys: 3 }, false);
    expect(configured.request(undefined, 'i:n:2')).toMatchObject({
      token: 'u',
      id: 'i:n:2#u#1',
      limit: 0.5,
      maxKeys: 3,
      fair: false,
    });
  });
});

describe('WaitList.peek and refuse (a shared gauge asks for a slot under its next waiter key)', () => {
  const list = () => new WaitList(new GaugeFigures('g'), 1, 10_000);

  it('names the waiter shift would take, and refuses one in place', async () => {
    const waiters = list();
    const first = waiters.add(undefined, 2, new KeyEntry('a'));
    void waiters.add(undefined, 2, new KeyEntry('b'));
    void waiters.add(undefined, 1, new KeyEntry('high'));
    expect(waiters.peek()?.entry?.key).toBe('high');
    const high = waiters.peek()!;
    expect(waiters.shift()).toBe(high);
    const a = waiters.peek()!;
    expect(a.entry?.key).toBe('a');
    expect(waiters.refuse(a, 'key-over-share')).toBe(true);
    await expect(first).rejects.toMatchObject({ reason: 'key-over-share' });
    expect(waiters.refuse(a, 'key-over-share')).toBe(false);
    expect(waiters.peek()?.entry?.key).toBe('b');
    expect(waiters.length).toBe(1);
    waiters.takeAll();
  });
});
