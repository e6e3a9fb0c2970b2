/**
 * Hand-written SVG line charts for the scenario report: one or more panels stacked over a
 * shared time axis, one line per variant, a shaded fault window, a shared legend. No
 * dependencies; the output is a plain string that GitHub renders inline.
 */

export interface Line {
  name: string;
  color: string;
  /** stroke-dasharray, so that lines lying on top of each other stay distinguishable. */
  dash?: string;
  /** [x, y]; y undefined leaves a gap in the line. */
  points: readonly (readonly [number, number | undefined])[];
}

export interface Panel {
  title: string;
  yLabel: string;
  lines: readonly Line[];
  scale: 'linear' | 'log';
  /** Axis bounds (default: from the data; a log axis never goes below `min`). */
  min?: number;
  max?: number;
  format?: (v: number) => string;
}

export interface ChartOptions {
  title: string;
  subtitle?: string;
  xMax: number;
  xLabel: string;
  shade?: { from: number; to: number; label: string };
  panels: readonly Panel[];
}

const WIDTH = 780;
const PANEL_HEIGHT = 210;
const GAP = 56;
const M = { l: 70, r: 190, t: 70, b: 44 };

export function esc(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

const f1 = (n: number) => n.toFixed(1);

function niceStep(span: number, target = 5): number {
  const raw = span / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * pow >= raw) return m * pow;
  return 10 * pow;
}

function defaultFormat(v: number): string {
  if (v >= 1000) return `${+(v / 1000).toFixed(1)}k`;
  return Number.isInteger(v) ? String(v) : v.toPrecision(2);
}

interface Axis {
  y(v: number): number;
  ticks: number[];
}

function axisFor(panel: Panel, top: number): Axis {
  const values = panel.lines.flatMap((l) =>
    l.points.map((p) => p[1]).filter((v): v is number => v !== undefined && Number.isFinite(v)),
  );
  const bottom = top + PANEL_HEIGHT;
  if (panel.scale === 'log') {
    const floor = panel.min ?? 1;
    const lo = Math.max(floor, Math.min(floor * 10, ...values.filter((v) => v > 0)));
    const hi = Math.max(lo * 10, panel.max ?? Math.max(...values, lo * 10));
    const l0 = Math.floor(Math.log10(lo));
    const l1 = Math.ceil(Math.log10(hi));
    const y = (v: number) => {
      const lv = Math.log10(Math.max(v, 10 ** l0));
      return bottom - ((lv - l0) / (l1 - l0)) * PANEL_HEIGHT;
    };
    const ticks: number[] = [];
    for (let k = l0; k <= l1; k++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** k;
        if (v >= 10 ** l0 && v <= 10 ** l1) ticks.push(v);
      }
    }
    return { y, ticks };
  }
  const lo = panel.min ?? Math.min(0, ...values);
  let hi = panel.max ?? Math.max(...values, lo + 1);
  const step = niceStep(hi - lo);
  if (panel.max === undefined) hi = Math.ceil(hi / step) * step;
  const y = (v: number) => bottom - ((v - lo) / (hi - lo)) * PANEL_HEIGHT;
  const ticks: number[] = [];
  for (let v = lo; v <= hi + step / 1e6; v += step) ticks.push(+v.toFixed(10));
  return { y, ticks };
}

/** A chart of stacked panels sharing the x axis (seconds) and a legend. */
export function chart(o: ChartOptions): string {
  const plotW = WIDTH - M.l - M.r;
  const height = M.t + o.panels.length * PANEL_HEIGHT + (o.panels.length - 1) * GAP + M.b;
  const x = (v: number) => M.l + (v / o.xMax) * plotW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="white"/>`,
    `<text x="${M.l}" y="22" font-size="15" font-weight="bold">${esc(o.title)}</text>`,
  ];
  if (o.subtitle) out.push(`<text x="${M.l}" y="40" fill="#555">${esc(o.subtitle)}</text>`);
  const xStep = niceStep(o.xMax, 8);

  o.panels.forEach((panel, index) => {
    const top = M.t + index * (PANEL_HEIGHT + GAP);
    const bottom = top + PANEL_HEIGHT;
    const axis = axisFor(panel, top);
    const format = panel.format ?? defaultFormat;
    out.push(`<g>`);
    out.push(`<text x="${M.l}" y="${top - 14}" font-weight="bold">${esc(panel.title)}</text>`);
    if (o.shade) {
      const x0 = x(o.shade.from);
      const x1 = x(o.shade.to);
      out.push(
        `<rect x="${f1(x0)}" y="${top}" width="${f1(x1 - x0)}" height="${PANEL_HEIGHT}" fill="#f4c7c3" fill-opacity="0.45"/>`,
      );
      if (index === 0)
        out.push(
          `<text x="${f1((x0 + x1) / 2)}" y="${top - 4}" text-anchor="middle" fill="#a33">${esc(o.shade.label)}</text>`,
        );
    }
    for (const v of axis.ticks) {
      const yv = f1(axis.y(v));
      out.push(`<line x1="${M.l}" x2="${M.l + plotW}" y1="${yv}" y2="${yv}" stroke="#e6e6e6"/>`);
      out.push(
        `<text x="${M.l - 6}" y="${f1(axis.y(v) + 4)}" text-anchor="end" fill="#444">${esc(format(v))}</text>`,
      );
    }
    for (let v = 0; v <= o.xMax + 1e-9; v += xStep) {
      out.push(
        `<line x1="${f1(x(v))}" x2="${f1(x(v))}" y1="${bottom}" y2="${bottom + 4}" stroke="#333"/>`,
      );
      out.push(
        `<text x="${f1(x(v))}" y="${bottom + 17}" text-anchor="middle" fill="#444">${+v.toFixed(3)}</text>`,
      );
    }
    out.push(`<line x1="${M.l}" x2="${M.l}" y1="${top}" y2="${bottom}" stroke="#333"/>`);
    out.push(`<line x1="${M.l}" x2="${M.l + plotW}" y1="${bottom}" y2="${bottom}" stroke="#333"/>`);
    out.push(
      `<text transform="translate(${M.l - 48} ${top + PANEL_HEIGHT / 2}) rotate(-90)" text-anchor="middle" fill="#333">${esc(panel.yLabel)}</text>`,
    );
    for (const line of panel.lines) {
      const dash = line.dash ? ` stroke-dasharray="${line.dash}"` : '';
      let segment: string[] = [];
      const flush = () => {
        if (segment.length > 1)
          out.push(
            `<polyline fill="none" stroke="${line.color}" stroke-width="1.8" stroke-linejoin="round"${dash} points="${segment.join(' ')}"/>`,
          );
        else if (segment.length === 1) {
          const [cx, cy] = segment[0]!.split(',');
          out.push(`<circle cx="${cx}" cy="${cy}" r="2" fill="${line.color}"/>`);
        }
        segment = [];
      };
      for (const [px, py] of line.points) {
        if (py === undefined || !Number.isFinite(py)) flush();
        else segment.push(`${f1(x(px))},${f1(axis.y(py))}`);
      }
      flush();
    }
    out.push(`</g>`);
    if (index === o.panels.length - 1)
      out.push(
        `<text x="${M.l + plotW / 2}" y="${bottom + 36}" text-anchor="middle" fill="#333">${esc(o.xLabel)}</text>`,
      );
  });

  // One legend for all panels: every panel draws the same variants in the same style.
  const legend = o.panels[0]?.lines ?? [];
  legend.forEach((line, i) => {
    const ly = M.t + 10 + i * 22;
    const lx = M.l + plotW + 18;
    const dash = line.dash ? ` stroke-dasharray="${line.dash}"` : '';
    out.push(
      `<line x1="${lx}" x2="${lx + 26}" y1="${ly}" y2="${ly}" stroke="${line.color}" stroke-width="2.2"${dash}/>`,
    );
    out.push(`<text x="${lx + 32}" y="${ly + 4}">${esc(line.name)}</text>`);
  });
  out.push('</svg>', '');
  return out.join('\n');
}
