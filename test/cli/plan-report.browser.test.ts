/**
 * The HTML report in headless Chromium (Debian's package, installed by test/support/chromium.ts
 * when missing): it opens from a file with no request but the file itself, both charts are drawn
 * where the data says (log axes, proportional stacks), and hostile names stay text.
 * A screenshot is left in the temp directory for a human to look at.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { FIXTURE_PLAN, HOSTILE, HOSTILE_PLAN } from './plan-report-fixture';
import type { CostPlan } from '../../constructs/planning/cost-plan';
import { renderPlanReport } from '../../lambdas/cli/plan-report';
import { launchChromium, type HeadlessChromium } from '../support/chromium';

// The page functions below run in Chromium; the project type-checks without the DOM library, so
// the little of it they use is declared here (module-scoped, so nothing else sees it).
interface DomElement {
  readonly tagName: string;
  readonly firstChild: { readonly textContent: string | null } | null;
  readonly classList: { contains(name: string): boolean };
  getAttribute(name: string): string | null;
  getBoundingClientRect(): { x: number; y: number; width: number; height: number; top: number; left: number; right: number };
}
declare const document: {
  readonly body: { readonly innerText: string };
  querySelector(selector: string): DomElement | null;
  querySelectorAll(selector: string): Iterable<DomElement>;
};
declare const window: { readonly __pwned?: unknown };

const SCREENSHOT = join(tmpdir(), 'cdk-scalable-ai-plan-report.png');

let browser: HeadlessChromium | undefined;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'plan-report-'));
  // A first run on a fresh machine installs Chromium (about a minute or two).
  browser = await launchChromium();
}, 12 * 60_000);

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Opened {
  readonly page: Page;
  readonly url: string;
  /** Every request the page made (aborted unless it is the report itself). */
  readonly requests: string[];
  /** Console errors and warnings (a CSP refusal is one), uncaught exceptions. */
  readonly problems: string[];
  readonly dialogs: string[];
}

async function open(name: string, plan: CostPlan): Promise<Opened> {
  const file = join(dir, `${name}.html`);
  writeFileSync(file, renderPlanReport(plan));
  const url = pathToFileURL(file).href;
  const page = await browser!.context.newPage();
  const opened: Opened = { page, url, requests: [], problems: [], dialogs: [] };
  page.on('request', (r) => opened.requests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') opened.problems.push(m.text());
  });
  page.on('pageerror', (e) => opened.problems.push(e.message));
  page.on('dialog', (d) => {
    opened.dialogs.push(d.message());
    void d.dismiss();
  });
  await page.route('**/*', (route) => (route.request().url() === url ? route.continue() : route.abort()));
  await page.goto(url, { waitUntil: 'load', timeout: 20_000 });
  return opened;
}

interface Point {
  readonly phase: number;
  readonly x: number;
  readonly y: number;
  readonly hollow: boolean;
}

interface Segment {
  readonly phase: number;
  readonly item: string;
  readonly usd: number;
  readonly top: number;
  readonly height: number;
}

interface Drawn {
  readonly charts: Array<{ width: number; height: number }>;
  readonly ours: Point[];
  readonly linear: Point[];
  readonly ratios: string[];
  readonly segments: Segment[];
  /** Screen y of the cost chart's x axis (the floor of the log y axis). */
  readonly floorY: number;
  /** Screen x of the cost chart's plot area: left, right. */
  readonly plotX: [number, number];
}

/** What Chromium laid out, in screen pixels. */
function drawn(page: Page): Promise<Drawn> {
  return page.evaluate(() => {
    const points = (selector: string): Point[] => [...document.querySelectorAll(selector)].map((e) => {
      const b = e.getBoundingClientRect();
      return { phase: Number(e.getAttribute('data-phase')), x: b.x + b.width / 2, y: b.y + b.height / 2, hollow: e.classList.contains('hollow') };
    });
    const axis = document.querySelector('#cost-chart line.axis')!.getBoundingClientRect();
    const plot = document.querySelector('#cost-chart rect.plot')!.getBoundingClientRect();
    return {
      charts: ['#cost-chart', '#breakdown-chart'].map((id) => {
        const b = document.querySelector(id)!.getBoundingClientRect();
        return { width: b.width, height: b.height };
      }),
      ours: points('#cost-chart .pt-ours[data-phase]'),
      linear: points('#cost-chart .pt-linear[data-phase]'),
      ratios: [...document.querySelectorAll('#cost-chart text.ratio')].map((e) => e.firstChild!.textContent!),
      segments: [...document.querySelectorAll('#breakdown-chart rect.seg')].map((e) => {
        const b = e.getBoundingClientRect();
        return { phase: Number(e.getAttribute('data-phase')), item: e.getAttribute('data-item')!, usd: Number(e.getAttribute('data-usd')), top: b.top, height: b.height };
      }),
      floorY: axis.y + axis.height / 2,
      plotX: [plot.left, plot.right] as [number, number],
    };
  });
}

/** Count of elements by tag name: a name that broke out of its text would add one. */
function tagCounts(page: Page): Promise<Record<string, number>> {
  return page.evaluate(() => {
    const counts: Record<string, number> = {};
    for (const e of document.querySelectorAll('*')) counts[e.tagName.toLowerCase()] = (counts[e.tagName.toLowerCase()] ?? 0) + 1;
    return counts;
  });
}

/** Segments of one bar: contiguous from the bottom, and each as tall as its share of the bar. */
function expectProportional(segments: Segment[]): void {
  const sorted = [...segments].sort((a, b) => a.top - b.top);
  const barHeight = sorted.reduce((s, x) => s + x.height, 0);
  const sum = sorted.reduce((s, x) => s + x.usd, 0);
  expect(barHeight).toBeGreaterThan(200);
  sorted.forEach((s, i) => {
    expect(Math.abs(s.height - (s.usd / sum) * barHeight)).toBeLessThan(0.5);
    if (i > 0) expect(Math.abs(sorted[i - 1].top + sorted[i - 1].height - s.top)).toBeLessThan(0.5);
  });
}

function expectOffline(o: Opened): void {
  expect(o.requests).toEqual([o.url]);
  expect(o.problems).toEqual([]);
  expect(o.dialogs).toEqual([]);
}

test('opens offline and draws both charts where the data says: log-log points, ratios, proportional stacks', async () => {
  const o = await open('fixture', FIXTURE_PLAN);
  expectOffline(o);
  const d = await drawn(o.page);
  for (const c of d.charts) {
    expect(c.width).toBeGreaterThan(600);
    expect(c.height).toBeGreaterThan(300);
  }

  const phases = FIXTURE_PLAN.phases;
  expect(d.ours.map((p) => p.phase)).toEqual([0, 1, 2, 3]);
  expect(d.linear.map((p) => p.phase)).toEqual([0, 1, 2, 3]);
  // Users grow tenfold per phase: equal steps to the right, both series at the same x.
  const xStep = d.ours[1].x - d.ours[0].x;
  expect(xStep).toBeGreaterThan(100);
  d.ours.forEach((p, i) => {
    expect(Math.abs(p.x - d.linear[i].x)).toBeLessThan(0.5);
    if (i > 0) expect(Math.abs(p.x - d.ours[i - 1].x - xStep)).toBeLessThan(0.5);
  });
  // The linear baseline grows tenfold per phase too: equal steps up (screen y grows downwards).
  const decade = (d.linear[0].y - d.linear[3].y) / 3;
  expect(decade).toBeGreaterThan(40);
  for (let i = 1; i < 4; i++) expect(Math.abs(d.linear[i - 1].y - d.linear[i].y - decade)).toBeLessThan(0.5);
  // Ours is cheaper at every phase: below linear by log10 of the ratio, in decades.
  phases.forEach((p, i) => {
    expect(d.ours[i].y).toBeGreaterThan(d.linear[i].y);
    expect((d.ours[i].y - d.linear[i].y) / decade).toBeCloseTo(Math.log10(p.linearCostPerDayUsd / p.costPerDayUsd), 2);
    if (i > 0) expect(d.ours[i].y).toBeLessThan(d.ours[i - 1].y);
  });
  expect(d.ratios).toEqual(['60.0%', '15.0%', '5.2%', '2.0%']);

  phases.forEach((p, i) => {
    const bar = d.segments.filter((s) => s.phase === i);
    expect(bar.map((s) => s.item).sort()).toEqual(p.costBreakdown.filter((c) => c.costPerDayUsd > 0).map((c) => c.item).sort());
    expectProportional(bar);
  });
  await expect(o.page.getByRole('heading', { name: 'Cost per day against users per day' }).isVisible()).resolves.toBe(true);
  await o.page.screenshot({ path: SCREENSHOT, fullPage: true });
  process.stderr.write(`plan report screenshot: ${SCREENSHOT}\n`);
  await o.page.close();
});

test('hostile names are shown as text and run nothing', async () => {
  const plain = await open('plain', FIXTURE_PLAN);
  const expected = await tagCounts(plain.page);
  await plain.page.close();

  const o = await open('hostile', HOSTILE_PLAN);
  expectOffline(o);
  expect(await o.page.evaluate(() => window.__pwned)).toBeUndefined();
  // Same numbers, so the same elements: no <script>, <img>, <b> or <svg> got in.
  expect(await tagCounts(o.page)).toEqual(expected);
  const text = await o.page.evaluate(() => document.body.innerText);
  for (const hostile of Object.values(HOSTILE)) expect(text).toContain(hostile);
  expect(await o.page.title()).toContain(HOSTILE.asOf);
  const segments = (await drawn(o.page)).segments.filter((s) => s.item === HOSTILE.item);
  expect(segments).toHaveLength(4);
  await o.page.close();
});

test('edge cases: a cost of 0 on the axis floor with a note, a breakdown that falls short, one phase', async () => {
  const [first, , , last] = FIXTURE_PLAN.phases;
  const edge = await open('edge', {
    pricesAsOf: '2026-11-01',
    phases: [
      { ...first, costPerDayUsd: 0, costBreakdown: [] },
      { ...last, costBreakdown: last.costBreakdown.filter((c) => c.item.startsWith('model:')) },
    ],
  });
  expectOffline(edge);
  const d = await drawn(edge.page);
  expect(d.ours[0].hollow).toBe(true);
  expect(Math.abs(d.ours[0].y - d.floorY)).toBeLessThan(1);
  expect(d.ours[1].hollow).toBe(false);
  await expect(edge.page.getByText('a log axis has no zero').isVisible()).resolves.toBe(true);
  const bar = d.segments.filter((s) => s.phase === 1);
  expect(bar.find((s) => s.item === 'not itemized')?.usd).toBe(500);
  expectProportional(bar);
  expect(d.segments.filter((s) => s.phase === 0)).toEqual([]);
  await edge.page.close();

  const one = await open('one', { pricesAsOf: '2026-11-01', phases: [last] });
  expectOffline(one);
  const single = await drawn(one.page);
  for (const c of single.charts) expect(c.width * c.height).toBeGreaterThan(0);
  expect(single.ours).toHaveLength(1);
  // One phase sits mid-axis, a decade of room each side.
  expect(Math.abs(single.ours[0].x - (single.plotX[0] + single.plotX[1]) / 2)).toBeLessThan(1);
  expectProportional(single.segments);
  await one.page.close();
});
