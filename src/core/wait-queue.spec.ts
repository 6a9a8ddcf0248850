import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { WaitQueue, type QueueNode } from './wait-queue';

class Node implements QueueNode {
  prev: QueueNode | undefined = undefined;
  next: QueueNode | undefined = undefined;
  deadline = 0;
  queued = false;
  constructor(readonly id: string) {}
}

const TIMEOUT = 100;

describe('WaitQueue', () => {
  let expired: string[];
  let queue: WaitQueue<Node>;
  /** One node per id, as a tuple as long as the ids given (so `const [a, b] = nodes('a', 'b')`). */
  const nodes = <T extends string[]>(...ids: T) =>
    ids.map((id) => new Node(id)) as { [K in keyof T]: Node };
  const ids = (list: Node[]) => list.map((n) => n.id);

  beforeEach(() => {
    jest.useFakeTimers();
    expired = [];
    queue = new WaitQueue<Node>(TIMEOUT, (node) => expired.push(node.id));
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('is empty at first: shift gives undefined, no timer', () => {
    expect(queue.length).toBe(0);
    expect(queue.shift()).toBeUndefined();
    expect(queue.drain()).toEqual([]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('shifts in FIFO order and keeps length right', () => {
    for (const node of nodes('a', 'b', 'c')) queue.push(node);
    expect(queue.length).toBe(3);
    expect(queue.shift()?.id).toBe('a');
    expect(queue.length).toBe(2);
    queue.push(new Node('d'));
    expect(ids([queue.shift()!, queue.shift()!, queue.shift()!])).toEqual(['b', 'c', 'd']);
    expect(queue.length).toBe(0);
    expect(queue.shift()).toBeUndefined();
  });

  it.each([
    ['head', 'a', ['b', 'c', 'd']],
    ['second (middle)', 'b', ['a', 'c', 'd']],
    ['third (middle)', 'c', ['a', 'b', 'd']],
    ['tail', 'd', ['a', 'b', 'c']],
  ])('removes the %s node and keeps the others in FIFO order', (_where, id, rest) => {
    const all = nodes('a', 'b', 'c', 'd');
    for (const node of all) queue.push(node);
    const target = all.find((n) => n.id === id)!;
    expect(queue.remove(target)).toBe(true);
    expect(target.queued).toBe(false);
    expect(target.prev).toBeUndefined();
    expect(target.next).toBeUndefined();
    expect(queue.length).toBe(3);
    expect(ids(queue.drain())).toEqual(rest);
  });

  it('appends correctly after the tail was removed', () => {
    const [a, b] = nodes('a', 'b');
    queue.push(a);
    queue.push(b);
    queue.remove(b);
    queue.push(new Node('c'));
    expect(ids(queue.drain())).toEqual(['a', 'c']);
  });

  it('removing a node twice, or a shifted node, is refused and leaves length alone', () => {
    const [a, b, c] = nodes('a', 'b', 'c');
    for (const node of [a, b, c]) queue.push(node);
    expect(queue.remove(b)).toBe(true);
    expect(queue.remove(b)).toBe(false);
    expect(queue.shift()).toBe(a);
    expect(queue.remove(a)).toBe(false);
    expect(queue.length).toBe(1);
    expect(queue.remove(c)).toBe(true);
    expect(queue.length).toBe(0);
    expect(queue.remove(c)).toBe(false);
    expect(queue.length).toBe(0);
    expect(queue.shift()).toBeUndefined();
  });

  it('removing the only node empties it, and it can be reused', () => {
    const [a] = nodes('a');
    queue.push(a);
    expect(queue.remove(a)).toBe(true);
    expect(queue.length).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    queue.push(a);
    expect(queue.length).toBe(1);
    expect(queue.shift()).toBe(a);
  });

  it('drain returns everything oldest first, empties the queue and stops the timer', () => {
    for (const node of nodes('a', 'b', 'c')) queue.push(node);
    expect(jest.getTimerCount()).toBe(1);
    expect(ids(queue.drain())).toEqual(['a', 'b', 'c']);
    expect(queue.length).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(TIMEOUT * 2);
    expect(expired).toEqual([]);
  });

  it('keeps a single timer however many wait', () => {
    for (let i = 0; i < 50; i++) {
      queue.push(new Node(String(i)));
      jest.advanceTimersByTime(1);
    }
    expect(jest.getTimerCount()).toBe(1);
  });

  it('expires each node at its own deadline, oldest first, with one timer re-armed', () => {
    queue.push(new Node('a')); // deadline 100
    jest.advanceTimersByTime(30);
    queue.push(new Node('b')); // deadline 130
    jest.advanceTimersByTime(30);
    queue.push(new Node('c')); // deadline 160
    jest.advanceTimersByTime(39); // t = 99
    expect(expired).toEqual([]);
    jest.advanceTimersByTime(1); // t = 100
    expect(expired).toEqual(['a']);
    expect(queue.length).toBe(2);
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(29); // t = 129
    expect(expired).toEqual(['a']);
    jest.advanceTimersByTime(1); // t = 130
    expect(expired).toEqual(['a', 'b']);
    jest.advanceTimersByTime(30); // t = 160
    expect(expired).toEqual(['a', 'b', 'c']);
    expect(queue.length).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('expires together the nodes whose deadlines have all passed', () => {
    for (const node of nodes('a', 'b', 'c')) queue.push(node);
    jest.advanceTimersByTime(TIMEOUT);
    expect(expired).toEqual(['a', 'b', 'c']);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('hands the expired node over already unlinked', () => {
    let seen: { queued: boolean; length: number } | undefined;
    queue = new WaitQueue<Node>(TIMEOUT, (node) => {
      seen = { queued: node.queued, length: queue.length };
    });
    queue.push(new Node('a'));
    jest.advanceTimersByTime(TIMEOUT);
    expect(seen).toEqual({ queued: false, length: 0 });
  });

  it('never expires a node that left (shift or remove) before its deadline', () => {
    const [a, b, c] = nodes('a', 'b', 'c');
    queue.push(a);
    jest.advanceTimersByTime(10);
    queue.push(b);
    jest.advanceTimersByTime(10);
    queue.push(c);
    expect(queue.shift()).toBe(a);
    queue.remove(c);
    jest.advanceTimersByTime(TIMEOUT - 20); // a's deadline: the old timer fires and re-arms for b
    expect(expired).toEqual([]);
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(10); // b's deadline
    expect(expired).toEqual(['b']);
    jest.advanceTimersByTime(TIMEOUT);
    expect(expired).toEqual(['b']);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('stops the timer when the last node leaves by shift or remove', () => {
    const [a, b] = nodes('a', 'b');
    queue.push(a);
    queue.push(b);
    queue.shift();
    expect(jest.getTimerCount()).toBe(1);
    queue.remove(b);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('arms a fresh timer for a node pushed after the queue emptied', () => {
    queue.push(new Node('a'));
    jest.advanceTimersByTime(50);
    queue.shift();
    queue.push(new Node('b'));
    jest.advanceTimersByTime(TIMEOUT - 1);
    expect(expired).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(expired).toEqual(['b']);
  });
});
