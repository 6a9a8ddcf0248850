import { describe, expect, it } from '@jest/globals';
import { CommandErrorLog, StoreCommandError } from './command-error';
import { StoreHealth } from './store-health';

class Lines {
  readonly warnings: string[] = [];
  warn(message: string): void {
    this.warnings.push(message);
  }
  log(): void {}
}

describe('command errors', () => {
  it('names the command and the reply', () => {
    const error = new StoreCommandError('backpressureAcquire', 'WRONGTYPE wrong kind');
    expect(error).toMatchObject({
      name: 'StoreCommandError',
      command: 'backpressureAcquire',
      reply: 'WRONGTYPE wrong kind',
      message: 'backpressureAcquire failed: WRONGTYPE wrong kind',
    });
  });

  it('logs each distinct command error once', () => {
    const lines = new Lines();
    const log = new CommandErrorLog(lines, 'Redis');
    const wrongType = new StoreCommandError('acquire', 'WRONGTYPE wrong kind');
    log.report(wrongType);
    log.report(new StoreCommandError('acquire', 'WRONGTYPE wrong kind'));
    log.report(new StoreCommandError('release', 'WRONGTYPE wrong kind'));
    log.report(new StoreCommandError('acquire', 'ERR user_script:3: bad'));
    expect(lines.warnings).toHaveLength(3);
    expect(lines.warnings[0]).toContain('Redis acquire failed: WRONGTYPE wrong kind');
  });

  it('keeps the store up on an error of the command, and takes it down on any other', () => {
    const lines = new Lines();
    const states: string[] = [];
    const health = new StoreHealth('Redis test', 'Redis', 60_000, lines, (s) => states.push(s));
    health.markUp();
    const wrongType = new StoreCommandError('acquire', 'WRONGTYPE wrong kind');
    expect(health.failed(wrongType)).toBe(wrongType);
    expect(health.failed(wrongType)).toBe(wrongType);
    expect(health.state).toBe('up');
    expect(lines.warnings).toHaveLength(1);

    expect(health.failed(new Error('Connection is closed.'))).toBeUndefined();
    expect(health.state).toBe('down');
    expect(health.reason).toBe('Connection is closed.');
    expect(states).toEqual(['up', 'down']);
    health.close();
  });
});
