/**
 * Renders the layout of the AiMonitoring dashboard (docs/dashboard-layout.svg): synthesizes a
 * representative ScalableAiService (a Bedrock tier, a SageMaker tier with auto scaling, static
 * answers, a batch pipeline), reads its `AWS::CloudWatch::Dashboard` body and draws the 24-column
 * grid, one rectangle per widget with its title. The output depends on the dashboard code only,
 * so test/repo/dashboard-layout.test.ts can compare it with the committed picture.
 *
 *   npx projen bundle && npx projen dashboard:layout
 *   (or: npx ts-node --transpile-only scripts/render-dashboard-layout.ts)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ModelTier, ScalableAiService } from '../constructs';

export const LAYOUT_FILE = path.join(__dirname, '..', 'docs', 'dashboard-layout.svg');
export const REGENERATE = 'npx projen bundle && npx projen dashboard:layout';

/** One widget of a dashboard body, as CloudWatch places it (grid units: 24 columns wide). */
export interface LayoutWidget {
  readonly type: string;
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly title: string;
  /** Labels of the visible series of a graph (metric math inputs hidden from the chart are left out). */
  readonly series: string[];
}

/** The template of the representative service (the same shape as the monitoring tests' fixture). */
export function representativeTemplate(): Template {
  const flags = JSON.parse(fs.readFileSync(require.resolve('aws-cdk-lib/recommended-feature-flags.json'), 'utf8'));
  const stack = new Stack(new App({ context: flags }), 'DashboardLayout');
  new ScalableAiService(stack, 'Service', {
    tiers: [
      ModelTier.bedrock({ tierId: 'small', modelId: 'us.amazon.nova-micro-v1:0', inputPricePer1kTokens: 0.000035, outputPricePer1kTokens: 0.00014 }),
      ModelTier.sageMaker(stack, 'LargeTier', {
        tierId: 'large',
        imageUri: '763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi3.0.1-gpu-py311-cu124-ubuntu22.04',
        environment: { HF_MODEL_ID: 'Qwen/Qwen2.5-7B-Instruct' },
        autoScaling: { minCapacity: 1, maxCapacity: 4 },
      }),
    ],
    staticAnswers: {},
    batchPipeline: {},
    routerOptions: { serviceName: 'shop', reservedConcurrentExecutions: 200 },
  });
  return Template.fromStack(stack);
}

/** The dashboard body as a string: the tokens of an `Fn::Join` (Region, ARNs, names) become `TOKEN`. */
export function dashboardBodyText(body: unknown): string {
  if (typeof body === 'string') return body;
  const join = (body as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  if (!join) throw new Error(`unexpected DashboardBody: ${JSON.stringify(body).slice(0, 200)}`);
  return join[1].map((part) => (typeof part === 'string' ? part : 'TOKEN')).join(join[0]);
}

/** The widgets of the template's only dashboard. */
export function layoutWidgets(template: Template): LayoutWidget[] {
  const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
  if (dashboards.length !== 1) throw new Error(`expected one dashboard, found ${dashboards.length}`);
  const body = JSON.parse(dashboardBodyText(dashboards[0].Properties.DashboardBody));
  return (body.widgets as any[]).map((w) => {
    const props = w.properties ?? {};
    // A text widget's first line is its header.
    const title = w.type === 'text'
      ? String(props.markdown ?? '').split('\n')[0].replace(/^#+\s*/, '')
      : String(props.title ?? '');
    const lines = (props.metrics ?? []) as unknown[][];
    const series = lines
      .map((line) => line[line.length - 1] as { visible?: boolean; label?: string } | string)
      .filter((options) => !(typeof options === 'object' && options.visible === false))
      .map((options) => (typeof options === 'object' ? options.label ?? '' : ''));
    return { type: w.type, x: w.x ?? 0, y: w.y ?? 0, width: w.width, height: w.height, title, series };
  });
}

const COLUMN = 40;
const ROW = 28;
const MARGIN = 16;
const HEADER = 48;
const FILL: Record<string, string> = { metric: '#eef4fb', alarm: '#fdf1e6', text: '#f2f2f2' };

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** Greedy word wrap at about `chars` characters a line. */
function wrap(text: string, chars: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > chars) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

function describe(w: LayoutWidget): string {
  if (w.type === 'alarm') return 'alarm status';
  if (w.type === 'text') return 'text';
  return `graph, ${w.series.length} series`;
}

/** Text lines of `texts`, `size` px high, from `top`, in a column of `chars` characters, cut to `maxLines`. */
function textLines(texts: string[], x: number, top: number, chars: number, maxLines: number, attributes: string, step: number): string[] {
  let lines = wrap(texts.join(', '), chars);
  if (lines.length > maxLines) lines = [...lines.slice(0, maxLines - 1), `${lines[maxLines - 1].slice(0, chars - 1)}…`];
  return lines.map((line, i) => `    <text x="${x}" y="${top + i * step}" ${attributes}>${escapeXml(line)}</text>`);
}

/** The SVG of the grid: each widget a rectangle at its x/y/width/height with its title. */
export function renderLayoutSvg(widgets: LayoutWidget[], caption: string): string {
  const rows = Math.max(0, ...widgets.map((w) => w.y + w.height));
  const width = 24 * COLUMN + 2 * MARGIN;
  const height = HEADER + rows * ROW + MARGIN;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `  <title>${escapeXml(caption)}</title>`,
    `  <rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...textLines([caption], MARGIN, 22, 120, 2, 'font-size="14" font-weight="bold" fill="#222222"', 16).map((l) => l.slice(2)),
  ];
  for (const w of widgets) {
    const x = MARGIN + w.x * COLUMN;
    const y = HEADER + w.y * ROW;
    const wPx = w.width * COLUMN;
    const hPx = w.height * ROW;
    out.push('  <g>');
    out.push(`    <rect x="${x + 2}" y="${y + 2}" width="${wPx - 4}" height="${hPx - 4}" rx="4" fill="${FILL[w.type] ?? '#f7f7f7'}" stroke="#5b7083" stroke-width="1"/>`);
    const chars = Math.max(8, Math.floor((wPx - 16) / 7));
    const title = textLines([w.title], x + 10, y + 22, chars, 3, 'font-size="13" font-weight="bold" fill="#1b2a38"', 16);
    out.push(...title);
    let top = y + 22 + title.length * 16 + 2;
    out.push(`    <text x="${x + 10}" y="${top}" font-size="11" fill="#5b7083">${escapeXml(`${describe(w)} · ${w.width}×${w.height} at (${w.x}, ${w.y})`)}</text>`);
    top += 16;
    const room = Math.floor((y + hPx - 8 - top) / 14) + 1;
    if (w.series.length > 0 && room > 0) {
      out.push(...textLines(w.series.filter(Boolean), x + 10, top, Math.floor((wPx - 16) / 6), room, 'font-size="11" fill="#33475b"', 14));
    }
    out.push('  </g>');
  }
  out.push('</svg>', '');
  return out.join('\n');
}

/** The picture of the representative service's dashboard, as committed in docs/. */
export function renderDashboardLayout(): string {
  return renderLayoutSvg(
    layoutWidgets(representativeTemplate()),
    'AiMonitoring dashboard (ScalableAiService: Bedrock tier small, SageMaker tier large with auto scaling, static answers, caches, batch pipeline)',
  );
}

if (require.main === module) {
  fs.mkdirSync(path.dirname(LAYOUT_FILE), { recursive: true });
  fs.writeFileSync(LAYOUT_FILE, renderDashboardLayout());
  process.stdout.write(`wrote ${path.relative(process.cwd(), LAYOUT_FILE)}\n`);
}
