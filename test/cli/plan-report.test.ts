/**
 * The HTML report as a string: escaping, self-containment and the edge cases of a plan (a cost
 * of 0 on a log axis, one phase, a breakdown that does not add up). The browser test
 * (plan-report.browser.test.ts) checks what Chromium draws.
 */
import { FIXTURE_PLAN, HOSTILE, HOSTILE_PLAN } from './plan-report-fixture';
import type { CostPlan, PhasePlan } from '../../constructs/planning/cost-plan';
import { renderPlanReport } from '../../lambdas/cli/plan-report';

const escaped = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

/** `data-usd` of each stacked segment of a phase, by item. */
function segments(html: string, phase: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of html.matchAll(/<rect class="seg" data-phase="(\d+)" data-item="([^"]*)" data-usd="([^"]*)"/g)) {
    if (Number(m[1]) === phase) out[m[2]] = Number(m[3]);
  }
  return out;
}

function onePhase(overrides: Partial<PhasePlan>): CostPlan {
  return { pricesAsOf: '2026-11-01', phases: [{ ...FIXTURE_PLAN.phases[0], ...overrides }] };
}

describe('renderPlanReport', () => {
  test('every string of the plan comes out escaped: no markup of its own survives', () => {
    const html = renderPlanReport(HOSTILE_PLAN);
    for (const hostile of Object.values(HOSTILE)) expect(html).toContain(escaped(hostile));
    expect(html).not.toMatch(/<script|<img|<svg onload|<b>|<\/dd><svg/i);
    // In attributes too: the item is a data-item value and must not close its quote.
    expect(html).toContain(`data-item="${escaped(HOSTILE.item)}"`);
  });

  test('is self-contained: nothing to fetch, and a policy that forbids fetching and scripts', () => {
    const html = renderPlanReport(FIXTURE_PLAN);
    expect(html).toMatch(/^<!doctype html>\n<html lang="en">/);
    expect(html).toContain('<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; style-src &#39;unsafe-inline&#39;;');
    expect(html).not.toMatch(/\b(src|href|xlink:href)=|https?:|@import|<link|<script/i);
    for (const m of html.matchAll(/url\(([^)]*)\)/g)) expect(m[1]).toMatch(/^#fill-\d+$/);
  });

  test('is labelled for screen readers: a document title, SVG titles and the table headers', () => {
    const html = renderPlanReport(FIXTURE_PLAN);
    expect(html).toContain('<title>Cost plan: 1K to 1M users/day (prices as of 2026-11-01)</title>');
    for (const id of ['cost-chart', 'breakdown-chart']) {
      expect(html).toContain(`<svg id="${id}" class="chart" viewBox="0 0 880 `);
      expect(html).toContain(`role="img" aria-labelledby="${id}-title ${id}-desc"`);
      expect(html).toMatch(new RegExp(`<title id="${id}-title">[^<]+</title>`));
    }
    expect(html).toContain('Users per day (log scale)');
    expect(html).toContain('Cost per day, USD (log scale)');
  });

  test('the economics table has one row per phase with costs, ratio, shares, latency; the options table their savings', () => {
    const html = renderPlanReport(FIXTURE_PLAN);
    const economics = html.slice(html.indexOf('<table id="economics">'), html.indexOf('</table>'));
    const rows = [...economics.matchAll(/<tr>\n<th scope="row">([^<]+)<\/th>(.*?)<\/tr>/gs)].map((m) => [m[1], ...[...m[2].matchAll(/<td>([^<]*)<\/td>/g)].map((c) => c[1])]);
    expect(rows).toEqual([
      ['1,000', '5,000', '$60.00', '$100.00', '60.0%', '940 ms', '8.0%', '12.0%', '10.0%', '40.0%', '20.0%', '10.0%'],
      ['10,000', '50,000', '$150.00', '$1,000', '15.0%', '610 ms', '10.0%', '18.0%', '17.0%', '33.0%', '14.0%', '8.0%'],
      ['100,000', '500,000', '$520.00', '$10,000', '5.2%', '330 ms', '12.0%', '24.0%', '24.0%', '25.0%', '10.0%', '5.0%'],
      ['1,000,000', '5,000,000', '$2,000', '$100,000', '2.0%', '180 ms', '14.0%', '30.0%', '28.0%', '18.0%', '7.0%', '3.0%'],
    ]);
    expect(economics).toContain('<th scope="colgroup" colspan="3">Cache hit rate</th><th scope="colgroup" colspan="3">Tier share</th>');
    expect(html).toContain('<tr><th scope="row">priority</th><td class="what">Priority service tier for the large tier</td>'
      + '<td class="costs-more">\u2212$9.00</td><td class="costs-more">\u2212$30.00</td><td class="costs-more">\u2212$117.00</td><td class="costs-more">\u2212$450.00</td></tr>');
    expect(html).toContain('<td class="">+$90.00</td>');
    expect(html).toContain('At 1,000,000 users/day: <strong>$2,000/day</strong>, 2.0% of the linear baseline ($100,000/day).');
  });

  test('the stacked segments of each phase are its breakdown items, in one order across phases', () => {
    const html = renderPlanReport(FIXTURE_PLAN);
    FIXTURE_PLAN.phases.forEach((p, i) => {
      // $0 items (opensearch below 1M) have no height and are not drawn.
      expect(segments(html, i)).toEqual(Object.fromEntries(p.costBreakdown.filter((c) => c.costPerDayUsd > 0).map((c) => [c.item, c.costPerDayUsd])));
    });
    expect(segments(html, 2)).not.toHaveProperty('opensearch');
    expect(html).not.toContain('not itemized');
  });

  test('a cost of 0 cannot sit on a log axis: it is drawn hollow on the floor, a decade below the rest, and the report says so', () => {
    const free = { ...FIXTURE_PLAN.phases[0], costPerDayUsd: 0, costBreakdown: [], billOptions: [] };
    const html = renderPlanReport({ ...FIXTURE_PLAN, phases: [free, ...FIXTURE_PLAN.phases.slice(1)] });
    expect(html).toContain('At 1K users/day ours is $0/day: a log axis has no zero, so its point is drawn hollow on the axis floor ($10).');
    expect(html).toContain('<circle class="pt pt-ours hollow" data-phase="0"');
    expect(html.match(/ hollow"/g)).toHaveLength(1);
    // The lowest real cost is $100 (1K linear): the floor is one decade below its decade.
    expect(html).toMatch(/text-anchor="end">\$10<\/text>/);
    expect(html).not.toMatch(/text-anchor="end">\$1<\/text>/);
    expect(html).toContain('>no cost</text>');
    expect(segments(html, 0)).toEqual({});
  });

  test('one phase only: the axis spans a decade each side, and the ratio is drawn', () => {
    const html = renderPlanReport(onePhase({}));
    const xTicks = [...html.matchAll(/<text class="tick" x="[^"]+" y="[^"]+" text-anchor="middle">([^<]+)<\/text>/g)].map((m) => m[1]);
    expect(xTicks.slice(0, 3)).toEqual(['100', '1K', '10K']);
    expect(html).toContain('<title>Cost plan: 1K users/day (prices as of 2026-11-01)</title>');
    expect(html.match(/<circle class="pt pt-ours" data-phase="\d"/g)).toHaveLength(1);
    expect(html).toMatch(/<text class="ratio" data-phase="0"[^>]*>60\.0%/);
  });

  test('a breakdown short of the total is completed by a "not itemized" segment; none at all is all "not itemized"', () => {
    const short = renderPlanReport(onePhase({ costBreakdown: [{ item: 'model:large', costPerDayUsd: 20 }, { item: 'elasticache', costPerDayUsd: 14 }] }));
    expect(segments(short, 0)).toEqual({ 'model:large': 20, 'elasticache': 14, 'not itemized': 26 });
    expect(short).toContain('At 1K users/day the items sum to $34.00/day, below the total of $60.00/day: the remainder is drawn as “not itemized”.');

    const none = renderPlanReport(onePhase({ costBreakdown: [] }));
    expect(segments(none, 0)).toEqual({ 'not itemized': 60 });
    expect(none).toContain('the plan has no cost breakdown');

    const over = renderPlanReport(onePhase({ costBreakdown: [{ item: 'model:large', costPerDayUsd: 80 }] }));
    expect(segments(over, 0)).toEqual({ 'model:large': 80 });
    expect(over).toContain('the items sum to $80.00/day, above the phase total of $60.00/day');

    const negative = renderPlanReport(onePhase({ costBreakdown: [{ item: 'model:large', costPerDayUsd: 60 }, { item: 'credit', costPerDayUsd: -5 }] }));
    expect(segments(negative, 0)).toEqual({ 'model:large': 60 });
    expect(negative).toContain('the item “credit” is \u2212$5.00/day: left out of the bar');
  });

  test('a plan with no phases says so instead of drawing empty charts', () => {
    const html = renderPlanReport({ pricesAsOf: '2026-11-01', phases: [] });
    expect(html).toContain('The plan has no phases: nothing to draw.');
    expect(html).not.toContain('<svg');
  });
});
