/**
 * How much more CPU a hostile question costs than plain text, per text function of the router's
 * hot path, at the largest request the router accepts (the TieredRouter default maxRequestBytes,
 * 32,768 bytes). A function that runs in linear time shows a ratio near 1 (a few times, for
 * inputs that take another branch); a quadratic one shows hundreds.
 *
 *   npx ts-node --transpile-only bench/hostile-text.ts            # about 30 s on 2 cores (more while a function is quadratic)
 *   npx ts-node --transpile-only bench/hostile-text.ts --bytes 8192
 *
 * Prints numbers only: it asserts nothing (DESIGN.md §7).
 */
import type { TierRuntimeConfig } from '../constructs/contract/runtime-config';
import { exactCacheKey, normalizeText, type Caller } from '../lambdas/core/cache-key';
import { parseChatRequest, type ChatRequest } from '../lambdas/core/chat-request';
import { HeuristicClassifier } from '../lambdas/core/classifier';
import { containsPersonalData } from '../lambdas/core/personal-data';
import { QuestionGuard } from '../lambdas/core/semantic/question-guard';
import { normalizeQuestion } from '../lambdas/core/static-answers';

/** TieredRouterProps.maxRequestBytes default (constructs/routing/tiered-router.ts). */
const DEFAULT_MAX_REQUEST_BYTES = 32_768;
const bytesArg = process.argv.indexOf('--bytes');
const MAX_BYTES = bytesArg > 0 ? Number(process.argv[bytesArg + 1]) : DEFAULT_MAX_REQUEST_BYTES;
/** What the JSON envelope `{"messages":[{"role":"user","content":"..."}]}` takes of the limit. */
const ENVELOPE = JSON.stringify({ messages: [{ role: 'user', content: '' }] }).length;

const TIERS: TierRuntimeConfig[] = [
  { id: 'small', provider: 'bedrock', modelId: 'm', inputPricePer1k: 0, outputPricePer1k: 0, maxTokens: 512, timeoutMs: 1_000 },
];
const LIMITS = { maxRequestBytes: MAX_BYTES, maxMessages: 20, tierIds: TIERS.map((t) => t.id) };
const CALLER: Caller = { tenantId: 'arn:aws:iam::111111111111:role/shop', userId: 'alice' };
const classifier = new HeuristicClassifier();
const guard = new QuestionGuard();

/** Repeats `unit` to fill a question whose request body (JSON-escaped, UTF-8) fits the limit. */
function fill(unit: string, tail = '', head = ''): string {
  const escapedBytes = (s: string): number => Buffer.byteLength(JSON.stringify(s), 'utf8') - 2;
  const room = MAX_BYTES - ENVELOPE - escapedBytes(head) - escapedBytes(tail);
  return head + unit.repeat(Math.max(1, Math.floor(room / escapedBytes(unit)))) + tail;
}

const PLAIN_SENTENCE = 'Could you tell me when my order will arrive, and whether I can still change the delivery address? ';

/** Questions, each as long as the limit allows. */
const INPUTS: Array<[string, string]> = [
  ['plain text', fill(PLAIN_SENTENCE)],
  ['run of digits', fill('1')],
  ['digits, then +1', fill('1', '+1')],
  ['run of dots + x', fill('.', 'x')],
  ['run of ?! + x', fill('?!', 'x')],
  ['@, run of dots + x', fill('.', 'x', '@')],
  ['dots and spaces + x', fill('. ', 'x')],
  ['run of spaces + x', fill(' ', 'x', 'a')],
  ['1+1+1…', fill('1+')],
  ['1 1 1…', fill('1 ')],
  ['1.1.1… (numbers)', fill('1.')],
  ['1,1,1…,', fill('1,')],
  ['nested brackets', fill('([{')],
  ['; then spaces, repeated', fill(';    ')],
  ['capitalized words', fill('Berlin ')],
  ['apostrophes', fill("n't ")],
  ['combining accents', fill('e\u0301')],
  ['NFKC expansion (U+FDFA)', fill('\uFDFA')],
];

/** The hot path's text functions, each given the question text. */
const FUNCTIONS: Array<[string, (text: string, body: string, req: ChatRequest) => unknown]> = [
  ['parseChatRequest', (_, body) => parseChatRequest(body, LIMITS)],
  ['normalizeText', (text) => normalizeText(text)],
  ['normalizeQuestion', (text) => normalizeQuestion(text)],
  ['exactCacheKey', (_, __, req) => exactCacheKey('bench:', CALLER, req, undefined)],
  ['classifier', (_, __, req) => classifier.classify(req)],
  ['guard.compare', (text) => guard.compare(text, 'When will my order arrive?')],
  ['containsPersonalData', (text) => containsPersonalData(text)],
];

/** Median milliseconds of one call: repeated for at least ~200 ms (at most 25 runs), once if a call is slow. */
function measure(fn: () => unknown): number {
  fn(); // warm-up (and JIT)
  const times: number[] = [];
  let total = 0;
  while (times.length < 25 && (total < 200 || times.length < 3)) {
    const start = process.hrtime.bigint();
    fn();
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    times.push(ms);
    total += ms;
    if (ms > 500) break;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function main(): void {
  console.log(`hostile-text: questions filling a ${MAX_BYTES}-byte request (node ${process.version})`);
  const results = new Map<string, Map<string, number>>();
  for (const [inputName, text] of INPUTS) {
    const body = JSON.stringify({ messages: [{ role: 'user', content: text }] });
    const req = parseChatRequest(body, LIMITS);
    const row = new Map<string, number>();
    for (const [fnName, fn] of FUNCTIONS) row.set(fnName, measure(() => fn(text, body, req)));
    results.set(inputName, row);
    console.error(`  measured ${inputName} (${text.length} characters, ${Buffer.byteLength(body, 'utf8')} bytes)`);
  }
  const plain = results.get('plain text')!;
  const width = Math.max(...INPUTS.map(([n]) => n.length));
  const header = ['input'.padEnd(width), ...FUNCTIONS.map(([n]) => n.padStart(21))].join(' ');
  console.log('\nmilliseconds per call (median), and the ratio to plain text');
  console.log(header);
  for (const [inputName] of INPUTS) {
    const row = results.get(inputName)!;
    const cells = FUNCTIONS.map(([fnName]) => {
      const ms = row.get(fnName)!;
      const ratio = ms / plain.get(fnName)!;
      return `${ms.toFixed(3)} (${ratio >= 100 ? ratio.toFixed(0) : ratio.toFixed(1)}x)`.padStart(21);
    });
    console.log([inputName.padEnd(width), ...cells].join(' '));
  }
  console.log('\nworst hostile-to-plain ratio per function');
  for (const [fnName] of FUNCTIONS) {
    let worst = { input: '', ratio: 0 };
    for (const [inputName] of INPUTS.slice(1)) {
      const ratio = results.get(inputName)!.get(fnName)! / plain.get(fnName)!;
      if (ratio > worst.ratio) worst = { input: inputName, ratio };
    }
    console.log(`  ${fnName.padEnd(21)} ${worst.ratio.toFixed(1).padStart(8)}x  (${worst.input}; plain ${plain.get(fnName)!.toFixed(3)} ms)`);
  }
}

main();
