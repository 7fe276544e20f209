/**
 * The HTML report of `cdk-scalable-ai plan --html FILE`: one self-contained document (inline CSS
 * and SVG drawn here, no script, no font, image or request of any kind, and a Content Security
 * Policy that forbids them) that opens offline in any browser.
 *
 * It shows (a) cost per day against users per day on log-log axes, ours against the linear
 * baseline, with the ratio at each phase; (b) each phase's daily bill by line item as a 100%
 * stacked bar (phases differ by orders of magnitude, so a shared linear axis would flatten the
 * small ones and a log axis cannot stack); (c) the economics table.
 *
 * Tier names, items and descriptions come from the user's configuration: every interpolated
 * value is HTML-escaped by the `html` template tag unless it is a fragment this module built.
 */
import type { CostItem, CostPlan, PhasePlan } from '../../constructs/planning/cost-plan';

// ---------------------------------------------------------------------------------------------
// Escaping: `html` escapes every interpolation except fragments it made itself.

class Html {
  constructor(readonly value: string) {}
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function fragment(value: unknown): string {
  if (value instanceof Html) return value.value;
  if (Array.isArray(value)) return value.map(fragment).join('');
  if (value === undefined || value === null) return '';
  return escapeHtml(String(value));
}

function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0];
  values.forEach((v, i) => {
    out += fragment(v) + strings[i + 1];
  });
  return new Html(out);
}

// ---------------------------------------------------------------------------------------------
// Formatting.

const MINUS = '\u2212';

function usd(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  const a = Math.abs(v);
  const sign = v < 0 ? MINUS : '';
  if (a === 0) return '$0';
  if (a >= 1000) return `${sign}$${Math.round(a).toLocaleString('en-US')}`;
  if (a >= 1) return `${sign}$${a.toFixed(2)}`;
  return `${sign}$${Number(a.toPrecision(2))}`;
}

function count(v: number): string {
  return Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a';
}

function percent(share: number): string {
  if (!Number.isFinite(share)) return 'n/a';
  const p = share * 100;
  if (p !== 0 && Math.abs(p) < 1) return `${Number(p.toPrecision(2))}%`;
  return `${p.toFixed(1)}%`;
}

/** 1000 -> 1K, 2500000 -> 2.5M: axis and chart labels. */
function short(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  for (const [unit, size] of [['B', 1e9], ['M', 1e6], ['K', 1e3]] as const) {
    if (Math.abs(v) >= size) return `${Number((v / size).toPrecision(3))}${unit}`;
  }
  return `${Number(v.toPrecision(3))}`;
}

function ms(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  return `${v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US')} ms`;
}

function ratioOf(p: PhasePlan): number {
  return p.linearCostPerDayUsd > 0 ? p.costPerDayUsd / p.linearCostPerDayUsd : NaN;
}

/** Long user-configured names would run out of a chart: cut them there (the table has them whole). */
function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}\u2026` : text;
}

// ---------------------------------------------------------------------------------------------
// Chart (a): cost per day against users per day, log-log.

const OURS = { colour: '#0072B2', label: 'Ours: cost per day' };
const LINEAR = { colour: '#D55E00', label: 'Linear baseline: every request to the largest tier, no cache' };

/** A log10 axis over whole decades. */
class LogAxis {
  readonly lo: number;
  readonly hi: number;
  constructor(values: readonly number[], extendBelow: boolean) {
    const logs = values.map(Math.log10);
    let lo = Math.floor(Math.min(...logs));
    let hi = Math.ceil(Math.max(...logs));
    if (hi === lo) {
      lo -= 1;
      hi += 1;
    }
    // Clamped (non-positive) values sit on the axis floor, one decade below every real value.
    if (extendBelow) lo -= 1;
    this.lo = lo;
    this.hi = hi;
  }
  /** 0 at the floor, 1 at the top decade. */
  fraction(v: number): number {
    return (Math.log10(v) - this.lo) / (this.hi - this.lo);
  }
  get floor(): number {
    return 10 ** this.lo;
  }
  decades(): number[] {
    const out: number[] = [];
    for (let d = this.lo; d <= this.hi; d++) out.push(d);
    return out;
  }
}

function decadeUsd(d: number): string {
  return d < 0 ? `$${(10 ** d).toFixed(-d)}` : `$${short(10 ** d)}`;
}

function drawable(v: number): boolean {
  return Number.isFinite(v) && v > 0;
}

function costChart(phases: readonly PhasePlan[]): { svg: Html; notes: Html[] } {
  const W = 880;
  const H = 470;
  const m = { top: 64, right: 32, bottom: 64, left: 88 };
  const pad = 28; // keeps the first and last phase off the axis lines
  const plotW = W - m.left - m.right;
  const plotH = H - m.top - m.bottom;

  const users = phases.map((p) => p.usersPerDay);
  const costs = phases.flatMap((p) => [p.costPerDayUsd, p.linearCostPerDayUsd]);
  const positiveUsers = users.filter(drawable);
  const positiveCosts = costs.filter(drawable);
  const xAxis = new LogAxis(positiveUsers.length ? positiveUsers : [1000], positiveUsers.length < users.length);
  const yAxis = new LogAxis(positiveCosts.length ? positiveCosts : [1], positiveCosts.length < costs.length);
  const x = (v: number): number => m.left + pad + (drawable(v) ? xAxis.fraction(v) : 0) * (plotW - 2 * pad);
  const y = (v: number): number => m.top + (1 - (drawable(v) ? yAxis.fraction(v) : 0)) * plotH;

  const notes: Html[] = [];
  for (const p of phases) {
    for (const [name, v] of [['ours', p.costPerDayUsd], ['the linear baseline', p.linearCostPerDayUsd]] as const) {
      if (!drawable(v)) {
        notes.push(html`At ${short(p.usersPerDay)} users/day ${name} is ${usd(v)}/day: a log axis has no zero, so its point is drawn hollow on the axis floor (${decadeUsd(yAxis.lo)}).`);
      }
    }
    if (!drawable(p.usersPerDay)) notes.push(html`A phase has ${p.usersPerDay} users/day: drawn at the left end of the axis (${short(xAxis.floor)}).`);
  }

  const grid: Html[] = [];
  const ticks: Html[] = [];
  const minor = (axis: LogAxis): number[] => {
    if (axis.hi - axis.lo > 8) return [];
    const out: number[] = [];
    for (let d = axis.lo; d < axis.hi; d++) for (let k = 2; k <= 9; k++) out.push(k * 10 ** d);
    return out;
  };
  for (const v of minor(xAxis)) grid.push(html`<line class="minor" x1="${x(v)}" x2="${x(v)}" y1="${m.top}" y2="${m.top + plotH}"/>`);
  for (const v of minor(yAxis)) grid.push(html`<line class="minor" x1="${m.left}" x2="${m.left + plotW}" y1="${y(v)}" y2="${y(v)}"/>`);
  for (const d of xAxis.decades()) {
    const px = x(10 ** d);
    grid.push(html`<line class="major" x1="${px}" x2="${px}" y1="${m.top}" y2="${m.top + plotH}"/>`);
    ticks.push(html`<text class="tick" x="${px}" y="${m.top + plotH + 20}" text-anchor="middle">${short(10 ** d)}</text>`);
  }
  for (const d of yAxis.decades()) {
    const py = y(10 ** d);
    grid.push(html`<line class="major" x1="${m.left}" x2="${m.left + plotW}" y1="${py}" y2="${py}"/>`);
    ticks.push(html`<text class="tick" x="${m.left - 10}" y="${py + 4}" text-anchor="end">${decadeUsd(d)}</text>`);
  }

  const path = (pick: (p: PhasePlan) => number): string =>
    phases.map((p, i) => `${i ? 'L' : 'M'}${x(p.usersPerDay).toFixed(1)},${y(pick(p)).toFixed(1)}`).join(' ');

  const marks: Html[] = [];
  const gaps: Html[] = [];
  phases.forEach((p, i) => {
    const px = x(p.usersPerDay);
    const yo = y(p.costPerDayUsd);
    const yl = y(p.linearCostPerDayUsd);
    const at = `${short(p.usersPerDay)} users/day`;
    const hollow = (v: number): string => (drawable(v) ? '' : ' hollow');
    marks.push(html`<rect class="pt pt-linear${hollow(p.linearCostPerDayUsd)}" data-phase="${i}" x="${px - 5}" y="${yl - 5}" width="10" height="10"><title>Linear baseline at ${at}: ${usd(p.linearCostPerDayUsd)}/day</title></rect>`);
    marks.push(html`<circle class="pt pt-ours${hollow(p.costPerDayUsd)}" data-phase="${i}" cx="${px}" cy="${yo}" r="5.5"><title>Ours at ${at}: ${usd(p.costPerDayUsd)}/day</title></circle>`);
    const ratio = ratioOf(p);
    gaps.push(html`<line class="gap" x1="${px}" x2="${px}" y1="${yo}" y2="${yl}"/>`);
    // The ratio sits beside the gap it measures; above both points when they nearly touch.
    const close = Math.abs(yo - yl) < 18;
    const ly = close ? Math.min(yo, yl) - 12 : (yo + yl) / 2 + 4;
    const right = px + 10 + 90 < m.left + plotW;
    const anchor = close ? 'middle' : right ? 'start' : 'end';
    const lx = close ? px : right ? px + 10 : px - 10;
    gaps.push(html`<text class="ratio" data-phase="${i}" x="${lx}" y="${ly}" text-anchor="${anchor}">${percent(ratio)}<title>At ${at} ours costs ${percent(ratio)} of the linear baseline</title></text>`);
  });

  const legendY = 26;
  const svg = html`<svg id="cost-chart" class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="cost-chart-title cost-chart-desc">
<title id="cost-chart-title">Cost per day against users per day, log-log: ours against the linear baseline</title>
<desc id="cost-chart-desc">${phases.map((p) => `${short(p.usersPerDay)} users/day: ours ${usd(p.costPerDayUsd)}, linear ${usd(p.linearCostPerDayUsd)} (${percent(ratioOf(p))}). `)}</desc>
<rect class="plot" x="${m.left}" y="${m.top}" width="${plotW}" height="${plotH}"/>
${grid}
<line class="axis" x1="${m.left}" x2="${m.left + plotW}" y1="${m.top + plotH}" y2="${m.top + plotH}"/>
<line class="axis" x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + plotH}"/>
${ticks}
<text class="axis-title" x="${m.left + plotW / 2}" y="${H - 16}" text-anchor="middle">Users per day (log scale)</text>
<text class="axis-title" transform="translate(22 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle">Cost per day, USD (log scale)</text>
<path class="series series-linear" d="${path((p) => p.linearCostPerDayUsd)}"/>
<path class="series series-ours" d="${path((p) => p.costPerDayUsd)}"/>
${gaps}
${marks}
<g class="legend" aria-hidden="true">
<line class="series series-ours" x1="${m.left}" x2="${m.left + 34}" y1="${legendY}" y2="${legendY}"/><circle class="pt pt-ours" cx="${m.left + 17}" cy="${legendY}" r="5"/>
<text x="${m.left + 42}" y="${legendY + 4}">${OURS.label}</text>
<line class="series series-linear" x1="${m.left + 230}" x2="${m.left + 264}" y1="${legendY}" y2="${legendY}"/><rect class="pt pt-linear" x="${m.left + 242}" y="${legendY - 5}" width="10" height="10"/>
<text x="${m.left + 272}" y="${legendY + 4}">${LINEAR.label}</text>
<line class="gap" x1="${m.left + 17}" x2="${m.left + 17}" y1="${legendY + 14}" y2="${legendY + 28}"/>
<text x="${m.left + 42}" y="${legendY + 25}">% : ours as a share of the linear baseline at that phase</text>
</g>
</svg>`;
  return { svg, notes };
}

// ---------------------------------------------------------------------------------------------
// Chart (b): the daily bill of each phase by line item, as shares of the phase's total.

// Okabe-Ito's colour-blind-safe colours, then Paul Tol's: a typical plan (3 tiers, 7 services) repeats none.
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#332288', '#999933', '#882255', '#44AA99', '#666666'];
/** Overlays that tell items apart without colour. */
const TEXTURES = [
  '',
  '<path d="M-2,2 l4,-4 M0,8 l8,-8 M6,10 l4,-4" stroke="#fff" stroke-width="1.6" stroke-opacity=".7"/>',
  '<circle cx="4" cy="4" r="1.6" fill="#fff" fill-opacity=".75"/>',
  '<path d="M0,2 h8 M0,6 h8" stroke="#fff" stroke-width="1.3" stroke-opacity=".7"/>',
  '<path d="M-2,6 l4,4 M0,0 l8,8 M6,-2 l4,4" stroke="#fff" stroke-width="1.6" stroke-opacity=".7"/>',
  '<path d="M2,0 v8 M6,0 v8" stroke="#fff" stroke-width="1.3" stroke-opacity=".7"/>',
  '<path d="M0,0 l8,8 M8,0 l-8,8" stroke="#000" stroke-width="1" stroke-opacity=".45"/>',
  '<path d="M0,4 h8 M4,0 v8" stroke="#fff" stroke-width="1.3" stroke-opacity=".7"/>',
];
const UNITEMIZED = 'not itemized';

interface Segment {
  readonly item: string;
  readonly usd: number;
}

/** Relative slack before a breakdown counts as not summing to the total (rounding in the planner). */
const SUM_TOLERANCE = 1e-6;

/** The segments of one phase's bar: its items, plus the remainder when they fall short of the total. */
function segmentsOf(p: PhasePlan, notes: Html[]): Segment[] {
  const items: CostItem[] = p.costBreakdown ?? [];
  const at = `${short(p.usersPerDay)} users/day`;
  const segments: Segment[] = [];
  for (const it of items) {
    // An item of $0 has no height: nothing to draw.
    if (it.costPerDayUsd > 0) segments.push({ item: it.item, usd: it.costPerDayUsd });
    else if (it.costPerDayUsd !== 0) notes.push(html`At ${at} the item “${it.item}” is ${usd(it.costPerDayUsd)}/day: left out of the bar (only amounts above $0 stack).`);
  }
  const sum = segments.reduce((s, x) => s + x.usd, 0);
  const total = p.costPerDayUsd;
  const slack = SUM_TOLERANCE * Math.max(Math.abs(total), 1);
  if (items.length === 0 && total > 0) {
    notes.push(html`At ${at} the plan has no cost breakdown: the whole ${usd(total)}/day is drawn as “${UNITEMIZED}”.`);
    segments.push({ item: UNITEMIZED, usd: total });
  } else if (Number.isFinite(total) && sum < total - slack) {
    notes.push(html`At ${at} the items sum to ${usd(sum)}/day, below the total of ${usd(total)}/day: the remainder is drawn as “${UNITEMIZED}”.`);
    segments.push({ item: UNITEMIZED, usd: total - sum });
  } else if (Number.isFinite(total) && sum > total + slack) {
    notes.push(html`At ${at} the items sum to ${usd(sum)}/day, above the phase total of ${usd(total)}/day: the bar shows the items' shares of their own sum.`);
  }
  return segments;
}

function breakdownChart(phases: readonly PhasePlan[]): { svg: Html; legend: Html; notes: Html[] } {
  const notes: Html[] = [];
  const bars = phases.map((p) => segmentsOf(p, notes));
  // One fill per item across all phases, in order of first appearance (bottom of the stack first).
  const order: string[] = [];
  for (const bar of bars) for (const s of bar) if (s.item !== UNITEMIZED && !order.includes(s.item)) order.push(s.item);
  if (bars.some((bar) => bar.some((s) => s.item === UNITEMIZED))) order.push(UNITEMIZED);
  const fillId = (item: string): string => `fill-${order.indexOf(item)}`;
  const patterns = order.map((item, i) => {
    const colour = item === UNITEMIZED ? '#BBBBBB' : PALETTE[i % PALETTE.length];
    const texture = item === UNITEMIZED ? TEXTURES[6] : TEXTURES[i % TEXTURES.length];
    return new Html(`<pattern id="${fillId(item)}" patternUnits="userSpaceOnUse" width="8" height="8"><rect width="8" height="8" fill="${colour}"/>${texture}</pattern>`);
  });

  const W = 880;
  const H = 430;
  const m = { top: 44, right: 24, bottom: 60, left: 72 };
  const plotW = W - m.left - m.right;
  const plotH = H - m.top - m.bottom;
  const slot = plotW / Math.max(phases.length, 1);
  const barW = Math.min(120, slot * 0.6);
  const yOf = (share: number): number => m.top + (1 - share) * plotH;

  const grid: Html[] = [];
  for (const s of [0, 0.25, 0.5, 0.75, 1]) {
    grid.push(html`<line class="major" x1="${m.left}" x2="${m.left + plotW}" y1="${yOf(s)}" y2="${yOf(s)}"/>`);
    grid.push(html`<text class="tick" x="${m.left - 10}" y="${yOf(s) + 4}" text-anchor="end">${s * 100}%</text>`);
  }

  const drawn: Html[] = [];
  phases.forEach((p, i) => {
    const cx = m.left + slot * (i + 0.5);
    const x0 = cx - barW / 2;
    const at = `${short(p.usersPerDay)} users/day`;
    const segs = [...bars[i]].sort((a, b) => order.indexOf(a.item) - order.indexOf(b.item));
    const sum = segs.reduce((s, x) => s + x.usd, 0);
    drawn.push(html`<text class="tick" x="${cx}" y="${m.top + plotH + 20}" text-anchor="middle">${at}</text>`);
    drawn.push(html`<text class="total" x="${cx}" y="${m.top - 10}" text-anchor="middle">${usd(p.costPerDayUsd)}/day</text>`);
    if (sum <= 0) {
      drawn.push(html`<text class="empty" x="${cx}" y="${m.top + plotH - 8}" text-anchor="middle">no cost</text>`);
      return;
    }
    let acc = 0;
    for (const s of segs) {
      const share = s.usd / sum;
      const top = yOf(acc + share);
      const h = yOf(acc) - top;
      acc += share;
      drawn.push(html`<rect class="seg" data-phase="${i}" data-item="${s.item}" data-usd="${s.usd}" x="${x0}" y="${top}" width="${barW}" height="${h}" fill="url(#${fillId(s.item)})"><title>${s.item} at ${at}: ${usd(s.usd)}/day (${percent(share)})</title></rect>`);
      if (h >= 18) drawn.push(html`<text class="seg-label" x="${cx}" y="${top + h / 2 + 4}" text-anchor="middle">${percent(share)}</text>`);
    }
  });

  const svg = html`<svg id="breakdown-chart" class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="breakdown-chart-title breakdown-chart-desc">
<title id="breakdown-chart-title">The daily bill of each phase by line item, as shares of the phase's total</title>
<desc id="breakdown-chart-desc">${phases.map((p, i) => `${short(p.usersPerDay)} users/day, ${usd(p.costPerDayUsd)}/day: ${bars[i].map((s) => `${s.item} ${usd(s.usd)}`).join(', ')}. `)}</desc>
<defs>${patterns}</defs>
${grid}
<line class="axis" x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + plotH}"/>
${drawn}
<text class="axis-title" transform="translate(20 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle">Share of the phase's cost per day</text>
<text class="axis-title" x="${m.left + plotW / 2}" y="${H - 12}" text-anchor="middle">Phase (users per day); above each bar its total cost per day</text>
</svg>`;
  const legend = html`<ul class="legend" aria-label="Line items, from the bottom of each bar up">${order.map(
    (item) => html`<li><svg class="swatch" viewBox="0 0 16 16" aria-hidden="true"><rect x="0.5" y="0.5" width="15" height="15" fill="url(#${fillId(item)})"/></svg>${clip(item, 60)}</li>`,
  )}</ul>`;
  return { svg, legend, notes };
}

// ---------------------------------------------------------------------------------------------
// The table.

function keysOf(phases: readonly PhasePlan[], pick: (p: PhasePlan) => object | undefined): string[] {
  const keys: string[] = [];
  for (const p of phases) for (const k of Object.keys(pick(p) ?? {})) if (!keys.includes(k)) keys.push(k);
  return keys;
}

function economicsTable(phases: readonly PhasePlan[]): Html {
  const levels = keysOf(phases, (p) => p.hitRate);
  const tiers = keysOf(phases, (p) => p.tierShare);
  const group = (label: string, n: number): Html => (n ? html`<th scope="colgroup" colspan="${n}">${label}</th>` : html``);
  const share = (map: { [k: string]: number } | undefined, k: string): Html =>
    html`<td>${map && k in map ? percent(map[k]) : '\u2013'}</td>`;
  const rows = phases.map((p) => html`<tr>
<th scope="row">${count(p.usersPerDay)}</th><td>${count(p.requestsPerDay)}</td><td>${usd(p.costPerDayUsd)}</td><td>${usd(p.linearCostPerDayUsd)}</td><td>${percent(ratioOf(p))}</td><td>${ms(p.meanLatencyMs)}</td>
${levels.map((k) => share(p.hitRate, k))}${tiers.map((k) => share(p.tierShare, k))}
</tr>`);
  return html`<div class="scroll"><table id="economics">
<caption>Ratio: ours as a share of the linear baseline. Cache hit rate and tier share: shares of the phase's requests.</caption>
<thead>
<tr><th scope="col" rowspan="2">Users/day</th><th scope="col" rowspan="2">Requests/day</th><th scope="col" rowspan="2">Cost/day</th><th scope="col" rowspan="2">Linear/day</th><th scope="col" rowspan="2">Ratio</th><th scope="col" rowspan="2">Mean latency</th>
${group('Cache hit rate', levels.length)}${group('Tier share', tiers.length)}</tr>
<tr>${levels.map((k) => html`<th scope="col">${k}</th>`)}${tiers.map((k) => html`<th scope="col">${k}</th>`)}</tr>
</thead>
<tbody>${rows}</tbody>
</table></div>`;
}

/** One row per bill option (its description beside its savings), one column per phase. */
function optionsTable(phases: readonly PhasePlan[]): Html {
  const options = [...new Set(phases.flatMap((p) => (p.billOptions ?? []).map((o) => o.option)))];
  if (!options.length) return html`<p>The plan names no bill options.</p>`;
  const rows = options.map((option) => {
    const descriptions = [...new Set(phases.flatMap((p) => (p.billOptions ?? []).filter((b) => b.option === option).map((b) => b.description)))];
    const cells = phases.map((p) => {
      const o = (p.billOptions ?? []).find((b) => b.option === option);
      if (!o) return html`<td>\u2013</td>`;
      const sign = o.savingPerDayUsd > 0 ? '+' : '';
      return html`<td class="${o.savingPerDayUsd < 0 ? 'costs-more' : ''}">${sign}${usd(o.savingPerDayUsd)}</td>`;
    });
    return html`<tr><th scope="row">${option}</th><td class="what">${descriptions.map((d, i) => html`${i ? html`<br>` : ''}${d}`)}</td>${cells}</tr>`;
  });
  return html`<div class="scroll"><table id="bill-options">
<caption>USD per day each change to the Bedrock bill would save on this trace (${MINUS}: it costs more).</caption>
<thead><tr><th scope="col">Option</th><th scope="col">What it changes</th>${phases.map((p) => html`<th scope="col">${short(p.usersPerDay)} users/day</th>`)}</tr></thead>
<tbody>${rows}</tbody>
</table></div>`;
}

// ---------------------------------------------------------------------------------------------

const STYLE = `
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1a1a1a; background: #fff; margin: 0; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 6px; }
h3 { font-size: 16px; margin: 20px 0 6px; }
.lead { margin: 0 0 8px; color: #333; }
.meta { color: #555; margin: 0; }
.chart { width: 100%; height: auto; display: block; font-size: 13px; }
.chart .plot { fill: #fcfcfc; stroke: none; }
.chart .major { stroke: #d4d4d4; stroke-width: 1; }
.chart .minor { stroke: #eeeeee; stroke-width: 1; }
.chart .axis { stroke: #333; stroke-width: 1.2; }
.chart .tick { fill: #333; font-size: 13px; }
.chart .axis-title { fill: #1a1a1a; font-size: 14px; font-weight: 600; }
.chart .series { fill: none; stroke-width: 2.5; }
.chart .series-ours { stroke: ${OURS.colour}; }
.chart .series-linear { stroke: ${LINEAR.colour}; stroke-dasharray: 9 5; }
.chart .pt-ours { fill: ${OURS.colour}; stroke: #fff; stroke-width: 1.5; }
.chart .pt-linear { fill: ${LINEAR.colour}; stroke: #fff; stroke-width: 1.5; }
.chart .pt.hollow { fill: #fff; stroke-width: 2; }
.chart .pt-ours.hollow { stroke: ${OURS.colour}; }
.chart .pt-linear.hollow { stroke: ${LINEAR.colour}; }
.chart .gap { stroke: #777; stroke-width: 1.2; stroke-dasharray: 2 3; }
.chart .ratio { font-weight: 700; fill: #1a1a1a; paint-order: stroke; stroke: #fff; stroke-width: 4px; stroke-linejoin: round; }
.chart .legend text { fill: #1a1a1a; font-size: 13px; }
.chart .seg { stroke: #fff; stroke-width: 0.8; }
.chart .seg-label { font-size: 12px; font-weight: 700; fill: #000; paint-order: stroke; stroke: #fff; stroke-width: 3.5px; stroke-linejoin: round; }
.chart .total { font-weight: 700; fill: #1a1a1a; }
.chart .empty { fill: #777; font-style: italic; }
.notes { margin: 4px 0 0; padding-left: 20px; color: #6a3d00; font-size: 14px; }
ul.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 6px 18px; padding: 0; margin: 8px 0 0 72px; font-size: 14px; }
ul.legend li { display: flex; align-items: center; gap: 6px; overflow-wrap: anywhere; }
.swatch { width: 16px; height: 16px; flex: none; border: 1px solid #555; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
caption { text-align: left; color: #444; padding-bottom: 6px; }
th, td { border: 1px solid #d8d8d8; padding: 4px 6px; text-align: right; white-space: nowrap; }
thead th { background: #f3f3f3; text-align: center; white-space: normal; overflow-wrap: break-word; max-width: 14em; }
tbody th { background: #fafafa; }
#economics tbody th { text-align: right; }
td.costs-more { color: #a12a00; }
td.what { text-align: left; white-space: normal; min-width: 16em; overflow-wrap: anywhere; }
tbody th { text-align: left; }
`;

/** What no report needs: nothing may load or run (a defence besides escaping). */
const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'";

/** Renders a cost plan as one self-contained HTML document. */
export function renderPlanReport(plan: CostPlan): string {
  const phases = [...(plan.phases ?? [])].sort((a, b) => a.usersPerDay - b.usersPerDay);
  const asOf = plan.pricesAsOf || 'unknown';
  const last = phases[phases.length - 1];
  const span = phases.length ? (phases.length === 1 ? `${short(last.usersPerDay)} users/day` : `${short(phases[0].usersPerDay)} to ${short(last.usersPerDay)} users/day`) : 'no phases';
  let body: Html;
  if (!last) {
    body = html`<p class="lead">The plan has no phases: nothing to draw.</p>`;
  } else {
    const cost = costChart(phases);
    const breakdown = breakdownChart(phases);
    const notesOf = (notes: Html[]): Html => (notes.length ? html`<ul class="notes">${notes.map((n) => html`<li>${n}</li>`)}</ul>` : html``);
    body = html`<p class="lead">At ${count(last.usersPerDay)} users/day: <strong>${usd(last.costPerDayUsd)}/day</strong>, ${percent(ratioOf(last))} of the linear baseline (${usd(last.linearCostPerDayUsd)}/day).</p>
<section aria-labelledby="h-cost"><h2 id="h-cost">Cost per day against users per day</h2>
${cost.svg}
${notesOf(cost.notes)}</section>
<section aria-labelledby="h-breakdown"><h2 id="h-breakdown">Where each phase's money goes</h2>
${breakdown.svg}
${breakdown.legend}
${notesOf(breakdown.notes)}</section>
<section aria-labelledby="h-table"><h2 id="h-table">The economics per phase</h2>
${economicsTable(phases)}
<h3>What the bill options would save</h3>
${optionsTable(phases)}</section>`;
  }
  return `<!doctype html>
${fragment(html`<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cost plan: ${span} (prices as of ${asOf})</title>
<style>${new Html(STYLE)}</style>
</head>
<body><main>
<h1>Cost plan</h1>
<p class="meta">${span}; prices as of ${asOf}. Made by <code>cdk-scalable-ai plan</code>.</p>
${body}
</main></body>
</html>
`)}`;
}
