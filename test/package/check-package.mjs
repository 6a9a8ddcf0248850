#!/usr/bin/env node
// Checks the package as npm would publish it: packs it (which builds dist/ afresh), then checks
// the tarball's
//   - files: what must ship (dist, README, LICENSE, CHANGELOG) and what must not (sources, tests);
//   - source maps: each carries the sources it maps (they are not published as files);
//   - entry graphs: the root entry reaches neither ioredis nor src/redis (nor the shared-store
//     engine under src/core/shared), nor prom-client, @opentelemetry/api or their subpaths, not
//     even in its types, nor @nestjs/terminus or the terminus subpath; each metrics subpath
//     reaches its own library only (no ioredis, not the other's); the terminus subpath reaches
//     @nestjs/terminus only; and the core reaches neither the Nest layer, @nestjs nor Redis;
//     nothing reaches @nestjs/swagger (the OpenAPI docs are metadata swagger reads);
//   - public API: each entry exports exactly the names in public-api.json, and every exported
//     name and every public member of an exported class or interface has a JSDoc comment;
//   - publint (strict) and are-the-types-wrong (every resolution mode, node10 included).
//
//   node test/package/check-package.mjs [--tarball x.tgz] [--consumer]
//
// --consumer also runs consumer-build.mjs on the same tarball (no second pack).
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { packLibrary, repo, run, step } from './pack.mjs';

const require = createRequire(import.meta.url);
const ts = require('typescript');
const { values: args } = parseArgs({
  options: { tarball: { type: 'string' }, consumer: { type: 'boolean', default: false } },
});

/**
 * Public members still without a JSDoc, in files other work is changing: listed here so the check
 * stays strict for everything else. Remove an entry once its member is documented (the check says
 * when an entry is no longer needed).
 */
const KNOWN_UNDOCUMENTED = new Set([]);

// Under node_modules/ so that the peers (@nestjs/common, ...) resolve from the repository's.
const work = join(repo, 'node_modules/.cache/nestjs-backpressure-package');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const problems = [];
const check = (ok, message) => {
  if (!ok) problems.push(message);
};

const tarball = args.tarball ? resolve(args.tarball) : packLibrary(work);
run('tar', ['-xzf', tarball, '-C', work]);
const pkg = join(work, 'package');
const files = listFiles(pkg).map((file) => relative(pkg, file).split(sep).join('/'));

step('files');
for (const required of [
  'package.json',
  'README.md',
  'LICENSE',
  'CHANGELOG.md',
  'dist/index.js',
  'dist/index.d.ts',
  'dist/redis/index.js',
  'dist/redis/index.d.ts',
  'dist/prometheus/index.js',
  'dist/prometheus/index.d.ts',
  'dist/opentelemetry/index.js',
  'dist/opentelemetry/index.d.ts',
  'dist/terminus/index.js',
  'dist/terminus/index.d.ts',
]) {
  check(files.includes(required), `missing from the tarball: ${required}`);
}
for (const file of files) {
  check(
    /^(package\.json|README\.md|LICENSE|CHANGELOG\.md|dist\/.+\.(js|d\.ts|js\.map))$/.test(file),
    `unexpected file in the tarball: ${file}`,
  );
  check(!/\.spec\./.test(file), `a test in the tarball: ${file}`);
}
console.log(`  ${files.length} files`);

step('source maps carry their sources');
for (const file of files.filter((f) => f.endsWith('.map'))) {
  const map = JSON.parse(readFileSync(join(pkg, file), 'utf8'));
  const carried = map.sourcesContent?.filter((content) => typeof content === 'string') ?? [];
  check(
    map.sources.length > 0 && carried.length === map.sources.length,
    `${file}: ${map.sources.length} sources, ${carried.length} carried in sourcesContent`,
  );
}

step('entry graphs');
const rootGraph = graph(['dist/index.d.ts', 'dist/index.js']);
for (const [file, imports] of rootGraph) {
  // Neither the Redis adapter nor the shared-store engine it runs on, nor the metrics
  // integrations: the root needs none of them.
  check(
    !/^dist\/(redis|core\/shared|prometheus|opentelemetry|metrics|terminus)\//.test(file),
    `the root entry reaches ${file}`,
  );
  for (const spec of imports) {
    check(
      !/^(ioredis|prom-client|@opentelemetry\/api|@nestjs\/terminus|@nestjs\/swagger)(\/|$)/.test(
        spec,
      ),
      `the root entry reaches an optional peer: ${file} imports ${spec}`,
    );
  }
}
console.log(
  `  root entry: ${rootGraph.size} files (types and code), none in dist/redis, dist/core/shared, the metrics or terminus subpaths; no ioredis, prom-client, @opentelemetry/api, @nestjs/terminus or @nestjs/swagger`,
);
// Each metrics subpath needs its own library only: a Prometheus user need not install OpenTelemetry.
for (const [entry, own, other] of [
  ['prometheus', 'prom-client', '@opentelemetry/api'],
  ['opentelemetry', '@opentelemetry/api', 'prom-client'],
]) {
  const reached = graph([`dist/${entry}/index.d.ts`, `dist/${entry}/index.js`]);
  let needsOwn = false;
  for (const [file, imports] of reached) {
    check(!/^dist\/(redis|core\/shared)\//.test(file), `dist/${entry} reaches ${file}`);
    for (const spec of imports) {
      needsOwn ||= spec === own;
      check(
        !new RegExp(`^(ioredis|${other.replace('/', '\\/')})(/|$)`).test(spec),
        `dist/${entry} reaches ${spec}: ${file}`,
      );
    }
  }
  check(needsOwn, `dist/${entry} never imports ${own}`);
  console.log(`  ${entry} entry: ${reached.size} files, ${own} only (no ioredis, no ${other})`);
}
// The health subpath needs @nestjs/terminus only: no store, no exporter.
{
  const reached = graph(['dist/terminus/index.d.ts', 'dist/terminus/index.js']);
  let needsTerminus = false;
  for (const [file, imports] of reached) {
    check(
      !/^dist\/(redis|core\/shared|prometheus|opentelemetry)\//.test(file),
      `dist/terminus reaches ${file}`,
    );
    for (const spec of imports) {
      needsTerminus ||= spec === '@nestjs/terminus';
      check(
        !/^(ioredis|prom-client|@opentelemetry\/api)(\/|$)/.test(spec),
        `dist/terminus reaches ${spec}: ${file}`,
      );
    }
  }
  check(needsTerminus, 'dist/terminus never imports @nestjs/terminus');
  console.log(
    `  terminus entry: ${reached.size} files, @nestjs/terminus only (no ioredis, no metrics library)`,
  );
}
const core = files.filter((f) => f.startsWith('dist/core/') && /\.(js|d\.ts)$/.test(f));
for (const [file, imports] of graph(core)) {
  check(file.startsWith('dist/core/'), `the core reaches ${file}, outside dist/core`);
  for (const spec of imports.filter((s) => !s.startsWith('.'))) {
    check(/^node:/.test(spec), `the core imports a package: ${file} imports ${spec}`);
  }
}
console.log(`  core: ${core.length} files, self-contained (no @nestjs, no Redis)`);

step('public API and its JSDoc');
const api = JSON.parse(readFileSync(join(repo, 'test/package/public-api.json'), 'utf8'));
const entries = {
  'nestjs-backpressure': 'dist/index.d.ts',
  'nestjs-backpressure/redis': 'dist/redis/index.d.ts',
  'nestjs-backpressure/prometheus': 'dist/prometheus/index.d.ts',
  'nestjs-backpressure/opentelemetry': 'dist/opentelemetry/index.d.ts',
  'nestjs-backpressure/terminus': 'dist/terminus/index.d.ts',
};
const program = ts.createProgram(
  Object.values(entries).map((entry) => join(pkg, entry)),
  {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: ['node'],
    typeRoots: [join(repo, 'node_modules/@types')],
    noEmit: true,
    skipLibCheck: true,
  },
);
const checker = program.getTypeChecker();
const documented = new Set();
for (const [entry, path] of Object.entries(entries)) {
  const source = program.getSourceFile(join(pkg, path));
  const exports = checker.getExportsOfModule(checker.getSymbolAtLocation(source));
  const names = exports.map((symbol) => symbol.name).sort();
  const expected = [...api[entry]].sort();
  for (const name of names.filter((n) => !expected.includes(n))) {
    problems.push(`${entry} exports ${name}, which is not in test/package/public-api.json`);
  }
  for (const name of expected.filter((n) => !names.includes(n))) {
    problems.push(`${entry} does not export ${name}, listed in test/package/public-api.json`);
  }
  const runtime = Object.keys(require(join(pkg, path.replace(/\.d\.ts$/, '.js'))));
  for (const name of runtime.filter((n) => !names.includes(n))) {
    problems.push(`${entry}: ${name} exists at run time but not in the types`);
  }
  for (const symbol of exports) checkDocs(symbol, entry);
  console.log(`  ${entry}: ${names.length} names (${runtime.length} values), as listed`);
}
for (const name of KNOWN_UNDOCUMENTED) {
  if (documented.has(name))
    problems.push(`${name} is documented now: drop it from KNOWN_UNDOCUMENTED`);
}

step('publint (strict)');
console.log(indent(run(join(repo, 'node_modules/.bin/publint'), ['run', tarball, '--strict'])));

step('are the types wrong');
console.log(
  indent(
    run(
      join(repo, 'node_modules/.bin/attw'),
      [tarball, '--format', 'table-flipped', '--no-color', '--no-emoji'],
      {
        env: { ...process.env, NO_COLOR: '1' },
      },
    ),
  ),
);

if (problems.length > 0) {
  console.error(`\npackage check FAILED:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  process.exit(1);
}
console.log('\npackage check: OK');

if (args.consumer) {
  run(process.execPath, [join(repo, 'test/package/consumer-build.mjs'), '--tarball', tarball], {
    stdio: 'inherit',
  });
}

/** Every file of `dir`, recursively. */
function listFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? listFiles(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

/**
 * The files reachable from `starts` through relative imports (imports, requires, dynamic imports,
 * `/// <reference>`s), each with every module specifier it names.
 */
function graph(starts) {
  const seen = new Map();
  const queue = [...starts];
  while (queue.length > 0) {
    const file = queue.shift();
    if (seen.has(file)) continue;
    const text = readFileSync(join(pkg, file), 'utf8');
    const info = ts.preProcessFile(text, true, true);
    const specs = [
      ...info.importedFiles.map((i) => i.fileName),
      ...info.typeReferenceDirectives.map((r) => r.fileName),
      ...info.referencedFiles.map((r) => r.fileName),
      ...[...text.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]),
    ];
    seen.set(file, specs);
    const ext = file.endsWith('.d.ts') ? '.d.ts' : '.js';
    for (const spec of specs.filter((s) => s.startsWith('.'))) {
      const base = join(dirname(file), spec).split(sep).join('/');
      const candidates = [`${base}${ext}`, `${base}/index${ext}`, base];
      const found = candidates.find((c) => files.includes(c));
      check(found !== undefined, `${file} imports ${spec}, which is not in the tarball`);
      if (found) queue.push(found);
    }
  }
  return seen;
}

/** An exported name, and the public members of an exported class or interface, need a JSDoc. */
function checkDocs(exported, entry) {
  const symbol =
    exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
  requireDoc(symbol, exported.name, entry);
  const declaration = symbol.declarations?.[0];
  if (!declaration) return;
  const members = [];
  if (symbol.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface)) {
    members.push(...checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(symbol)));
  }
  if (symbol.flags & ts.SymbolFlags.Class) {
    const statics = checker.getTypeOfSymbolAtLocation(symbol, declaration);
    members.push(...checker.getPropertiesOfType(statics).filter((m) => m.name !== 'prototype'));
  }
  for (const member of members) {
    const own =
      member.declarations?.filter((d) => d.getSourceFile().fileName.startsWith(pkg)) ?? [];
    if (own.length === 0) continue; // inherited from Nest or the platform
    const flags = ts.getCombinedModifierFlags(own[0]);
    if (flags & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
    if (member.name.startsWith('#')) continue;
    requireDoc(member, `${exported.name}.${member.name}`, entry);
  }
}

function requireDoc(symbol, name, entry) {
  const text = ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
  if (text !== '') {
    documented.add(name);
    return;
  }
  if (!KNOWN_UNDOCUMENTED.has(name))
    problems.push(`${entry}: ${name} has no JSDoc (nothing on hover)`);
}

function indent(text) {
  return text
    .trim()
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}
