/**
 * The committed picture of the dashboard's layout (docs/dashboard-layout.svg, shown in the README)
 * is what the dashboard code draws today.
 */
import * as fs from 'node:fs';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { LAYOUT_FILE, REGENERATE, layoutWidgets, renderDashboardLayout, renderLayoutSvg, representativeTemplate } from '../../scripts/render-dashboard-layout';

const fresh = renderDashboardLayout();

test('docs/dashboard-layout.svg is up to date with the dashboard code', () => {
  const committed = fs.existsSync(LAYOUT_FILE) ? fs.readFileSync(LAYOUT_FILE, 'utf8') : '';
  if (committed !== fresh) {
    throw new Error(`docs/dashboard-layout.svg differs from the dashboard the code synthesizes: run \`${REGENERATE}\` and commit the file`);
  }
});

test('the picture shows the p50, p95 and p99 latency widgets, overall, by how served and by tier', () => {
  for (const title of ['Latency (ms), all requests', 'Latency (ms) by how served', 'Latency (ms) by tier']) {
    expect(fresh).toContain(`>${title}</text>`);
  }
  expect(fresh).toContain('>p50, p95, p99</text>');
});

test('every widget is drawn at its grid place, inside the 24 columns', () => {
  const widgets = layoutWidgets(representativeTemplate());
  expect(widgets.length).toBeGreaterThan(15);
  for (const w of widgets) {
    expect(w.x + w.width).toBeLessThanOrEqual(24);
    expect(fresh).toContain(`${w.width}×${w.height} at (${w.x}, ${w.y})`);
  }
});

test('a text widget is drawn with its header line as title', () => {
  const stack = new Stack();
  new cloudwatch.Dashboard(stack, 'D', { widgets: [[new cloudwatch.TextWidget({ markdown: '## Errors & <fallbacks>\nsecond line', width: 24, height: 2 })]] });
  expect(layoutWidgets(Template.fromStack(stack))).toEqual([{ type: 'text', x: 0, y: 0, width: 24, height: 2, title: 'Errors & <fallbacks>', series: [] }]);
});

test('titles and labels are XML-escaped', () => {
  const svg = renderLayoutSvg([
    { type: 'text', x: 0, y: 0, width: 24, height: 1, title: 'Errors & <fallbacks>', series: [] },
    { type: 'metric', x: 0, y: 1, width: 12, height: 6, title: 'A "quoted" title', series: ['a<b'] },
  ], 'caption');
  expect(svg).toContain('>Errors &amp; &lt;fallbacks&gt;</text>');
  expect(svg).toContain('>A &quot;quoted&quot; title</text>');
  expect(svg).toContain('>a&lt;b</text>');
  expect(svg).not.toMatch(/<fallbacks>|a<b/);
});
