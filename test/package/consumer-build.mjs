#!/usr/bin/env node
// Builds a consumer app against the PACKED library, as an npm user gets it, with
// `skipLibCheck: false`, `strict`, `exactOptionalPropertyTypes` and `noUncheckedIndexedAccess`: first without ioredis, prom-client or @opentelemetry/api
// (the root entry must not need them, not even in its types; nor @nestjs/microservices,
// @nestjs/websockets or @nestjs/swagger: its routes' OpenAPI docs are metadata, written anyway), then with ioredis and the `nestjs-backpressure/redis` entry, then with
// prom-client and @opentelemetry/api and the `nestjs-backpressure/prometheus` and
// `/opentelemetry` entries, then with @nestjs/terminus and the `/terminus` entry, then with
// @nestjs/swagger (a documented app). Each is compiled as CommonJS under `module: nodenext`, as
// ESM (.mts) under `nodenext`, and as CommonJS under the classic `moduleResolution: node10`, and
// the root app is run once as CommonJS and once as ESM.
//
// The @nestjs packages, rxjs, reflect-metadata, TypeScript, @types/node and ioredis are the
// versions installed in this repository, so running it after switching the repository to
// NestJS 11 checks a NestJS 11 consumer. They are installed with `--prefer-offline`, i.e. from the
// npm cache that `npm ci` just filled: no second download in CI. The one exception is the oldest
// TypeScript the README promises (MIN_TYPESCRIPT), which every variant is compiled with too
// (fetched once, then cached). On NestJS 12 only the node10 variant is: NestJS 12 is ESM-only, and
// TypeScript reads an ESM package's types from CommonJS under `nodenext` only from 5.8 on, for
// the app's own imports of @nestjs/common as much as for this library's.
//
//   node test/package/consumer-build.mjs [--tarball x.tgz] [--nest 11] [--typescript 5.x.y] [--keep]
//
// --nest installs that @nestjs/common and @nestjs/core in the consumer instead of the
// repository's (from the registry unless cached), to try another NestJS without switching the
// repository.
//
// --typescript replaces the repository's TypeScript (how the minimum was found: 5.2 could not
// parse the `import("@nestjs/common", { with: { "resolution-mode": "import" } })` types tsc
// emitted for inferred module-definition types when built against NestJS 12; they are now typed
// explicitly, and `--nest 11 --typescript 5.0.4` passes).
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { packLibrary, run, step } from './pack.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '../..');
const { values: args } = parseArgs({
  options: {
    tarball: { type: 'string' },
    typescript: { type: 'string' },
    nest: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});

const installed = (name) =>
  JSON.parse(readFileSync(join(repo, 'node_modules', name, 'package.json'), 'utf8')).version;
const at = (name, version = installed(name)) => `${name}@${version}`;
const nest = args.nest ?? installed('@nestjs/core');
const nestMajor = Number(/\d+/.exec(nest)[0]);
/** The oldest TypeScript the types support, as the README states. */
const MIN_TYPESCRIPT = '5.3.3';
const compilers = [
  ['typescript', args.typescript ?? installed('typescript')],
  ['typescript-min', MIN_TYPESCRIPT],
];

/** Run where ioredis is not installed: the redis entry loads, and a URL fails clearly. */
const missingIoredis = `
  const { resolveGaugeOptions } = require('nestjs-backpressure');
  const { RedisGaugeStore } = require('nestjs-backpressure/redis');
  try {
    new RedisGaugeStore({ redis: 'redis://127.0.0.1:6379' }).createGauge(resolveGaugeOptions('x'));
    console.log('created');
  } catch (error) {
    console.log(error.name, error.message);
  }`;

const work = mkdtempSync(join(tmpdir(), 'bp-consumer-'));
const app = join(work, 'app');
const failures = [];
try {
  const tarball = args.tarball ?? packLibrary(work);

  cpSync(join(here, 'consumer-app'), join(app, 'src'), { recursive: true });
  for (const name of ['root', 'redis', 'prometheus', 'opentelemetry', 'terminus', 'openapi']) {
    cpSync(join(app, 'src', `${name}.ts`), join(app, 'src', `${name}.esm.mts`));
  }
  writeJson(join(app, 'package.json'), { name: 'consumer', private: true, type: 'commonjs' });
  const npmInstall = (...packages) =>
    run(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        '--loglevel=error',
        ...packages,
      ],
      { cwd: app },
    );
  npmInstall(
    tarball,
    at('@nestjs/common', args.nest),
    at('@nestjs/core', args.nest),
    at('reflect-metadata'),
    at('rxjs'),
    at('@types/node'),
    at('typescript', args.typescript),
    `typescript-min@npm:typescript@${MIN_TYPESCRIPT}`,
  );

  const nestInstalled = JSON.parse(
    readFileSync(join(app, 'node_modules/@nestjs/core/package.json'), 'utf8'),
  ).version;
  step(
    `consumer app on NestJS ${nestInstalled}, TypeScript ${compilers.map(([, v]) => v).join(' and ')}`,
  );
  console.log(`  in ${app}`);

  step(
    'without ioredis, prom-client, @opentelemetry/api, @nestjs/swagger: the root entry compiles (skipLibCheck: false) and runs',
  );
  const files = (withRedis) => ['root', ...(withRedis ? ['redis'] : [])];
  compileAll(files(false));
  expect(
    run('node', ['-e', `require('./out/cjs/root.js').main().then(console.log)`], { cwd: app }),
    /^pdf full 429 256 1 3 api 3 2\n$/,
    'the CommonJS app runs',
  );
  expect(
    run(
      'node',
      [
        '--input-type=module',
        '-e',
        `import('./out/esm/root.esm.mjs').then((m) => m.main()).then(console.log)`,
      ],
      { cwd: app },
    ),
    /^pdf full 429 256 1 3 api 3 2\n$/,
    'the ESM app runs (named imports of the CommonJS build)',
  );
  expect(
    run('node', ['-e', missingIoredis], { cwd: app }),
    /^GaugeConfigError .*"ioredis" could not be loaded.*npm install ioredis/s,
    'the redis entry loads without ioredis and says what to install when given a URL',
  );

  step('with ioredis: the root and redis entries compile (skipLibCheck: false)');
  npmInstall(at('ioredis'));
  compileAll(files(true));

  step('with prom-client and @opentelemetry/api: the metrics entries compile and run');
  npmInstall(at('prom-client'), at('@opentelemetry/api'));
  compileAll(['prometheus', 'opentelemetry']);
  expect(
    run('node', ['-e', `require('./out/cjs/prometheus.js').main().then(console.log)`], {
      cwd: app,
    }),
    /^app_admitted_total\{gauge="pdf"\} 1\n$/,
    'the Prometheus app runs and scrapes',
  );
  expect(
    run('node', ['-e', `require('./out/cjs/opentelemetry.js').main().then(console.log)`], {
      cwd: app,
    }),
    /^backpressure\.requests backpressure\.gauge\n$/,
    'the OpenTelemetry app runs (on the no-op meter)',
  );

  step('with @nestjs/terminus: the terminus entry compiles and runs');
  npmInstall(at('@nestjs/terminus'));
  compileAll(['terminus']);
  expect(
    run('node', ['-e', `require('./out/cjs/terminus.js').main().then(console.log)`], {
      cwd: app,
    }),
    /^saturated 1\/1 memory\n$/,
    'the terminus app runs a health check',
  );

  step('with @nestjs/swagger: the openapi app compiles and documents its refusals');
  npmInstall(at('@nestjs/swagger'), at('@nestjs/platform-express'));
  compileAll(['openapi']);
  expect(
    run('node', ['-e', `require('./out/cjs/openapi.js').main().then(console.log)`], {
      cwd: app,
    }),
    /^200,429 429 schema \| 200 429 schema\n$/,
    "swagger's document lists each limited route's 429; with openApi: false only the route's own",
  );
} catch (error) {
  failures.push(error.message);
} finally {
  if (args.keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
if (failures.length > 0) {
  console.error(`\nconsumer build FAILED:\n${failures.join('\n\n')}`);
  process.exit(1);
}
console.log('\nconsumer build: OK');

/** The same sources under three module settings; a type error in any of them fails the check. */
function compileAll(names) {
  const common = {
    target: 'ES2022',
    lib: ['ES2022'],
    types: ['node'],
    strict: true,
    // What strict apps add; `undefined` for an optional option must still compile.
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    skipLibCheck: false,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    forceConsistentCasingInFileNames: true,
  };
  const variants = [
    ['cjs', { module: 'nodenext', moduleResolution: 'nodenext' }, names.map((n) => `src/${n}.ts`)],
    [
      'esm',
      { module: 'nodenext', moduleResolution: 'nodenext' },
      names.map((n) => `src/${n}.esm.mts`),
    ],
    [
      'node10',
      { module: 'commonjs', moduleResolution: 'node10', esModuleInterop: true, noEmit: true },
      names.map((n) => `src/${n}.ts`),
    ],
  ];
  for (const [name, options, files] of variants) {
    const config = `tsconfig.${name}.json`;
    writeJson(join(app, config), {
      compilerOptions: { ...common, rootDir: 'src', outDir: `out/${name}`, ...options },
      files,
    });
    for (const [compiler, version] of compilers) {
      if (compiler === 'typescript-min' && nestMajor >= 12 && name !== 'node10') {
        continue; // NestJS 12's own types need TypeScript 5.8 under nodenext (see the top)
      }
      // The first compiler emits (for the runs below); the oldest one only checks.
      const emit = compiler === 'typescript' ? [] : ['--noEmit'];
      try {
        const tsc = join(app, 'node_modules', compiler, 'bin/tsc');
        run(process.execPath, [tsc, '-p', config, ...emit], { cwd: app });
        console.log(`  TypeScript ${version}, ${config}: OK (${files.join(', ')})`);
      } catch (error) {
        throw new Error(
          `TypeScript ${version}, ${config} (${files.join(', ')}) failed:\n${error.message}`,
        );
      }
    }
  }
}

function expect(output, pattern, what) {
  if (!pattern.test(output)) {
    throw new Error(`${what}: expected ${pattern}, got:\n${output}`);
  }
  console.log(`  ${what}: OK`);
}

function writeJson(file, value) {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}
