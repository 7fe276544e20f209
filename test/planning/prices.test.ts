import { PRICE_FILE, PRICE_KEYS, inferenceScopeOf, modelPricesOf, onDemandPricesOf } from '../../constructs/planning/prices';

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const URL = /^https:\/\/[a-z0-9.-]+\.(amazonaws\.com|amazon\.com)\//;

/** Every priced thing of the file, with a name for the failure message. */
function sourced(): Array<[string, { source: string; asOf: string }]> {
  const out: Array<[string, { source: string; asOf: string }]> = [];
  for (const [id, m] of Object.entries(PRICE_FILE.models)) {
    for (const key of ['input', 'output', 'batch', 'flex', 'priority', 'cacheWrite', 'cacheRead', 'minCacheTokens', 'geographicPremium'] as const) {
      const entry = m[key];
      if (entry) out.push([`${id}.${key}`, entry]);
    }
  }
  for (const [key, price] of Object.entries(PRICE_FILE.infrastructure)) out.push([key, price]);
  for (const [id, price] of Object.entries(PRICE_FILE.embeddings)) out.push([id, price]);
  return out;
}

test('every price names its AWS source page and the date it was read', () => {
  const entries = sourced();
  expect(entries.length).toBeGreaterThan(30);
  for (const [name, entry] of entries) {
    expect({ name, source: URL.test(entry.source) }).toEqual({ name, source: true });
    expect({ name, asOf: DATE.test(entry.asOf) && entry.asOf <= PRICE_FILE.asOf }).toEqual({ name, asOf: true });
  }
  expect(PRICE_FILE.asOf).toMatch(DATE);
});

test('every price is a positive number with a unit; every factor is positive', () => {
  for (const m of Object.values(PRICE_FILE.models)) {
    for (const p of [m.input, m.output]) expect(p.usd).toBeGreaterThan(0);
    for (const f of [m.batch, m.flex, m.priority, m.cacheRead, m.cacheWrite, m.geographicPremium]) if (f) expect(f.factor).toBeGreaterThan(0);
  }
  for (const p of Object.values(PRICE_FILE.infrastructure)) {
    expect(p.usd).toBeGreaterThan(0);
    expect(p.unit).not.toBe('');
  }
});

test('the prices that could not be found are listed with a reason', () => {
  expect(PRICE_FILE.missing.length).toBeGreaterThan(0);
  for (const m of PRICE_FILE.missing) {
    expect(m.item).not.toBe('');
    expect(m.reason).not.toBe('');
  }
  expect(PRICE_KEYS).toContain('embeddings.per1kTokens');
});

test('the models of the examples are priced, whatever inference profile names them', () => {
  for (const id of ['us.amazon.nova-micro-v1:0', 'us.amazon.nova-lite-v1:0', 'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
    'arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0', 'global.anthropic.claude-sonnet-4-5-20250929-v1:0']) {
    expect(modelPricesOf(id)).toBeDefined();
  }
  expect(modelPricesOf('meta.llama3-70b-instruct-v1:0')).toBeUndefined();
  expect(inferenceScopeOf('us.amazon.nova-micro-v1:0')).toBe('geographic');
  expect(inferenceScopeOf('global.anthropic.claude-sonnet-4-5-20250929-v1:0')).toBe('global');
  expect(inferenceScopeOf('amazon.nova-micro-v1:0')).toBe('in-region');
});

test('on-demand prices of a model id: a geographic profile at its premium, a global or in-Region id at the file\'s price', () => {
  const sonnet = PRICE_FILE.models['anthropic.claude-sonnet-4-5-20250929-v1:0'];
  expect(onDemandPricesOf('global.anthropic.claude-sonnet-4-5-20250929-v1:0')).toEqual({ inputPer1k: sonnet.input.usd, outputPer1k: sonnet.output.usd });
  // Claude Sonnet 4.5 through a US profile: 10% above global.
  expect(onDemandPricesOf('us.anthropic.claude-sonnet-4-5-20250929-v1:0')).toEqual({ inputPer1k: 0.0033, outputPer1k: 0.0165 });
  // Nova has no geographic premium in the file.
  expect(onDemandPricesOf('us.amazon.nova-micro-v1:0')).toEqual({ inputPer1k: 0.000035, outputPer1k: 0.00014 });
  expect(onDemandPricesOf('meta.llama3-70b-instruct-v1:0')).toBeUndefined();
});

test('a price from a third-party page says so in its note', () => {
  const titan = PRICE_FILE.embeddings['amazon.titan-embed-text-v2:0'];
  expect(titan.usd).toBeGreaterThan(0);
  expect(titan.note).toMatch(/^THIRD-PARTY/);
});
