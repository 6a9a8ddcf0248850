import { Controller, Get } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { Limited } from '../src';

/**
 * Handlers limited by `@Limited`: the interceptor takes a slot before the handler runs and gives it
 * back when the handler's work is over. A request that gets no slot in time answers 429.
 */
@Controller()
export class WorkController {
  /** Fail fast: 10 slots (the `request` gauge), an 11th concurrent request gets 429 at once. */
  @Get('request')
  @Limited('request')
  async request(): Promise<string> {
    await sleep(2000);
    return 'done';
  }

  /**
   * Queue: 2 slots, up to 5 more requests wait (at most 1 s) for one, the rest get 429 at once.
   * With 400 ms of work, 4 waiters get a slot in time and the 5th times out (429 after 1 s).
   */
  @Get('queued')
  @Limited('queued')
  async queued(): Promise<string> {
    await sleep(400);
    return 'done';
  }
}
