/**
 * Bar and line charts as plain SVG strings: a few dozen lines instead of a plotting dependency and
 * a headless browser. Each point is a median with a min–max whisker, as every figure here is.
 */
export interface Point {
  median: number;
  min: number;
  max: number;
}

export interface Series {
  name: string;
  values: Array<Point | undefined>;
  dashed?: boolean;
}

export interface ChartOptions {
  title: string;
  subtitle?: string;
  /** One label per x position (categories: offered loads, variants...). */
  xLabels: string[];
  xTitle: string;
  yTitle: string;
  series: Series[];
  logY?: boolean;
  yMax?: number;
  /** Horizontal guides, e.g. a target or the capacity. */
  guides?: Array<{ y: number; label: string }>;
}

const COLORS = [
  '#d62728',
  '#1f77b4',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#7f7f7f',
];
/** Series `i`'s colour, the palette repeating. */
const colorOf = (i: number): string => COLORS[i % COLORS.length]!; // i % length is in range
const W = 760;
const H = 440;
const MARGIN = { left: 72, right: 24, bottom: 64 };

export function lineChart(o: ChartOptions): string {
  return chart(o, (x, y, i, s) => {
    const color = colorOf(i);
    const pts = s.values.map((v, j) =>
      v && Number.isFinite(v.median) ? ([x(j), v] as const) : undefined,
    );
    const path = pts
      .filter((p) => p !== undefined)
      .map((p, j) => `${j ? 'L' : 'M'}${p[0].toFixed(1)},${y(p[1].median).toFixed(1)}`)
      .join(' ');
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    let out = `<path d="${path}" fill="none" stroke="${color}" stroke-width="2.5"${dash}/>`;
    for (const p of pts) {
      if (!p) continue;
      out += whisker(p[0], y(p[1].min), y(p[1].max), color);
      out += `<circle cx="${p[0].toFixed(1)}" cy="${y(p[1].median).toFixed(1)}" r="4" fill="${color}"/>`;
    }
    return out;
  });
}

export function barChart(o: ChartOptions): string {
  return chart(o, (x, y, i, s, slot) => {
    const color = colorOf(i);
    const width = slot / (o.series.length + 1);
    let out = '';
    s.values.forEach((v, j) => {
      if (!v || !Number.isFinite(v.median)) return;
      const cx = x(j) - slot / 2 + width * (i + 1);
      const top = y(v.median);
      out += `<rect x="${(cx - width / 2).toFixed(1)}" y="${top.toFixed(1)}" width="${(width * 0.9).toFixed(1)}" height="${(y(baseline(o)) - top).toFixed(1)}" fill="${color}"/>`;
      out += whisker(cx - width * 0.05, y(v.min), y(v.max), '#222');
    });
    return out;
  });
}

type Draw = (
  x: (j: number) => number,
  y: (v: number) => number,
  i: number,
  s: Series,
  slot: number,
) => string;

function chart(o: ChartOptions, draw: Draw): string {
  // The legend sits between the subtitle and the plot, two entries a row, never over the data.
  const legendRows = Math.ceil(o.series.length / 2);
  const M = { ...MARGIN, top: 60 + legendRows * 18 + 10 };
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const all = o.series.flatMap((s) => s.values.flatMap((v) => (v ? [v.min, v.median, v.max] : [])));
  const finite = [...all, ...(o.guides ?? []).map((g) => g.y)].filter(
    (v) => Number.isFinite(v) && (!o.logY || v > 0),
  );
  const top = o.yMax ?? Math.max(...finite) * 1.08;
  const ticks = o.logY ? logTicks(Math.min(...finite), top) : linearTicks(top);
  // No ticks (no finite value) leave NaN, as an out-of-range index did.
  const lo = o.logY ? (ticks[0] ?? NaN) : 0;
  const hi = o.logY ? Math.max(top, ticks.at(-1) ?? NaN) : Math.max(top, ticks.at(-1) ?? NaN);
  const y = (v: number) => {
    const f = o.logY
      ? (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))
      : (v - lo) / (hi - lo);
    return M.top + plotH * (1 - Math.min(1, Math.max(0, f)));
  };
  const slot = plotW / o.xLabels.length;
  const x = (j: number) => M.left + slot * (j + 0.5);

  let svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="Helvetica, Arial, sans-serif" font-size="13">`;
  svg += `<rect width="${W}" height="${H}" fill="#fff"/>`;
  svg += text(M.left, 24, o.title, 'start', 16, 'bold');
  if (o.subtitle) svg += text(M.left, 44, o.subtitle, 'start', 12, 'normal', '#555');
  for (const t of ticks) {
    svg += `<line x1="${M.left}" x2="${W - M.right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#e5e5e5"/>`;
    svg += text(M.left - 8, y(t) + 4, fmt(t), 'end');
  }
  for (const g of o.guides ?? []) {
    svg += `<line x1="${M.left}" x2="${W - M.right}" y1="${y(g.y).toFixed(1)}" y2="${y(g.y).toFixed(1)}" stroke="#555" stroke-dasharray="3 3"/>`;
    svg += text(W - M.right - 4, y(g.y) - 5, g.label, 'end', 11, 'normal', '#333');
  }
  o.xLabels.forEach((label, j) => (svg += text(x(j), H - M.bottom + 20, label, 'middle')));
  svg += `<line x1="${M.left}" x2="${W - M.right}" y1="${y(lo)}" y2="${y(lo)}" stroke="#333"/>`;
  svg += `<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="#333"/>`;
  svg += text(M.left + plotW / 2, H - 16, o.xTitle, 'middle');
  svg += `<text transform="translate(18 ${M.top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(o.yTitle)}</text>`;
  o.series.forEach((s, i) => (svg += draw(x, y, i, s, slot)));
  o.series.forEach((s, i) => {
    const lx = M.left + (i % 2) * 330;
    const ly = 66 + Math.floor(i / 2) * 18;
    svg += `<rect x="${lx}" y="${ly - 9}" width="14" height="10" fill="${colorOf(i)}"/>`;
    svg += text(lx + 20, ly, s.name, 'start', 12);
  });
  return `${svg}</svg>\n`;
}

function baseline(o: ChartOptions): number {
  return o.logY ? 1e-9 : 0;
}

function whisker(cx: number, y1: number, y2: number, color: string): string {
  if (Math.abs(y1 - y2) < 1) return '';
  const c = cx.toFixed(1);
  return `<path d="M${c},${y1.toFixed(1)} V${y2.toFixed(1)} M${(cx - 4).toFixed(1)},${y1.toFixed(1)} h8 M${(cx - 4).toFixed(1)},${y2.toFixed(1)} h8" stroke="${color}" stroke-width="1.2" fill="none"/>`;
}

function linearTicks(max: number): number[] {
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = 0; t <= max + step * 0.999; t += step) ticks.push(Number(t.toPrecision(6)));
  return ticks;
}

function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let d = Math.floor(Math.log10(min)); d <= Math.ceil(Math.log10(max)); d++) {
    for (const m of [1, 2, 5]) {
      const t = m * 10 ** d;
      if (t >= min / 2 && t <= max * 2) ticks.push(Number(t.toPrecision(6)));
    }
  }
  return ticks;
}

function fmt(v: number): string {
  if (v >= 1000) return `${Number((v / 1000).toPrecision(3))}k`;
  return String(Number(v.toPrecision(3)));
}

function text(
  x: number,
  y: number,
  s: string,
  anchor: string,
  size = 13,
  weight = 'normal',
  fill = '#222',
): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" text-anchor="${anchor}" font-size="${size}" font-weight="${weight}" fill="${fill}">${esc(s)}</text>`;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
