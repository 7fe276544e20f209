/**
 * The pre-bundled handlers in assets/ are what users deploy (their `cdk synth` never bundles).
 * These checks read the bundles the build produced and make sure the vector-store queries the
 * adapters' tests verify made it into them, and that no bundle carries the CLI's model weights.
 */
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';

const ASSETS = path.join(__dirname, '..', '..', 'assets', 'lambdas');
const bundle = (name: string): string => fs.readFileSync(path.join(ASSETS, name, 'handler', 'index.js'), 'utf8');

describe('the router bundle', () => {
  const code = bundle('router');

  test('issues Valkey vector search with an HNSW index: FT.CREATE and FT.SEARCH with KNN', () => {
    for (const fragment of ['FT.CREATE', 'FT.SEARCH', 'HNSW', 'KNN', 'DISTANCE_METRIC', 'COSINE']) expect(code).toContain(fragment);
  });

  test('issues pgvector queries: cosine distance and an HNSW index', () => {
    for (const fragment of ['<=>', 'USING hnsw', 'vector_cosine_ops', 'hnsw.ef_search']) expect(code).toContain(fragment);
  });

  test('issues OpenSearch k-NN queries on a knn_vector field', () => {
    expect(code).toContain('knn_vector');
    expect(code).toMatch(/knn:\{embedding:\{vector:/);
  });

  test('calls Bedrock Converse and SageMaker InvokeEndpoint through the AWS SDK', () => {
    expect(code).toContain('ConverseCommand');
    expect(code).toContain('InvokeEndpointCommand');
  });
});

describe('every handler bundle', () => {
  const names = fs.readdirSync(ASSETS).filter((n) => fs.existsSync(path.join(ASSETS, n, 'handler', 'index.js')));

  test('exists for each handler under lambdas/', () => {
    const handlers = fs.readdirSync(path.join(__dirname, '..', '..', 'lambdas')).filter((n) => fs.existsSync(path.join(__dirname, '..', '..', 'lambdas', n, 'handler.ts')));
    expect(names.sort()).toEqual(handlers.sort());
  });

  test.each(names)('%s is self-contained and free of the CLI\'s embedder', (name) => {
    const code = bundle(name);
    expect(code).not.toContain('@lat.md/embed');
    // Bundled means no require() of packages that the Lambda runtime would not have.
    const requires = [...code.matchAll(/require\("([^"./][^"]*)"\)/g)].map((m) => m[1]);
    const external = requires.filter((r) => !r.startsWith('node:') && !BUILTINS.has(r.split('/')[0]) && !OPTIONAL.has(r));
    expect(external).toEqual([]);
  });
});

const BUILTINS = new Set(builtinModules);
/** Packages the bundled libraries require inside try/catch and work without (native add-ons). */
const OPTIONAL = new Set(['@aws-sdk/signature-v4-crt', 'pg-native']);
