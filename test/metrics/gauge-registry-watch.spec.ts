import { GaugeRegistry, type Gauge, type GaugeKind } from '../../src';

describe('GaugeRegistry.onGauge and list(kind)', () => {
  it('announces the gauges that exist, then each new one with its kind, until stopped', () => {
    const registry = new GaugeRegistry({ gauges: { pdf: { limit: 2 } } });
    const seen: Array<[string, GaugeKind]> = [];
    const stop = registry.onGauge((gauge, kind) => seen.push([gauge.name, kind]));
    expect(seen).toEqual([['pdf', 'pinned']]);

    registry.get('looked-up-at-start'); // before bootstrap: pinned
    registry.onApplicationBootstrap();
    registry.get('tenant-1'); // after: dynamic
    registry.get('tenant-1'); // no second announcement
    expect(seen).toEqual([
      ['pdf', 'pinned'],
      ['looked-up-at-start', 'pinned'],
      ['tenant-1', 'dynamic'],
    ]);
    const names = (gauges: Gauge[]) => gauges.map((g) => g.name);
    expect(names(registry.list('pinned'))).toEqual(['pdf', 'looked-up-at-start']);
    expect(names(registry.list('dynamic'))).toEqual(['tenant-1']);
    expect(names(registry.list())).toEqual(['pdf', 'looked-up-at-start', 'tenant-1']);

    const late: string[] = [];
    registry.onGauge((gauge, kind) => late.push(`${gauge.name}:${kind}`));
    expect(late).toEqual(['pdf:pinned', 'looked-up-at-start:pinned', 'tenant-1:dynamic']);

    stop();
    registry.get('tenant-2');
    expect(seen).toHaveLength(3);
    expect(late).toContain('tenant-2:dynamic');
  });

  it('keeps creating gauges when a listener throws', () => {
    const registry = new GaugeRegistry({});
    registry.onApplicationBootstrap();
    registry.onGauge(() => {
      throw new Error('listener bug');
    });
    expect(registry.get('x').name).toBe('x');
  });
});
