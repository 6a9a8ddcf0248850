import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      'dist-sample/',
      'coverage/',
      'docs/',
      '.bench-tmp/',
      '*.tgz',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        URL: 'readonly',
        fetch: 'readonly',
        performance: 'readonly',
        Buffer: 'readonly',
        global: 'readonly',
        globalThis: 'readonly',
        queueMicrotask: 'readonly',
        module: 'readonly',
        require: 'readonly',
        __dirname: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  // Promises must be handled: a floating one hides a rejection, a misused one (an async callback
  // where a void one is expected) loses it. Type-aware, so it reads the project's types.
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'sample-app/**/*.ts'],
    ignores: ['test/package/consumer-app/**'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  // Layers: the core is framework-free and store-free; Redis sits beside it (its own entry point,
  // `nestjs-backpressure/redis`) and may use the core only; the root entry and the Nest layer never
  // reach Redis, so an app without ioredis compiles with `skipLibCheck: false`.
  {
    files: ['src/core/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../*'], message: 'src/core imports only src/core.' },
            { group: ['@nestjs/*', 'ioredis'], message: 'src/core is framework- and store-free.' },
            {
              group: ['./shared', './shared/*'],
              message: 'The core gauges do not need src/core/shared.',
            },
          ],
        },
      ],
    },
  },
  {
    // A core unit test may also use the shared test helpers (test/support).
    files: ['src/core/*.spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./(?!\\.\\./test/support/)',
              message: 'src/core imports only src/core (and, in a spec, test/support).',
            },
            { group: ['@nestjs/*', 'ioredis'], message: 'src/core is framework- and store-free.' },
            {
              group: ['./shared', './shared/*'],
              message: 'The core gauges do not need src/core/shared.',
            },
          ],
        },
      ],
    },
  },
  {
    // src/core/shared: what a shared gauge does whatever its store; a store is an adapter beside it.
    files: ['src/core/*/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../../*'], message: 'src/core imports only src/core.' },
            { group: ['@nestjs/*', 'ioredis'], message: 'src/core is framework- and store-free.' },
          ],
        },
      ],
    },
  },
  {
    // A unit test in a core subfolder (src/core/adaptive) may also use the shared test helpers.
    files: ['src/core/*/**/*.spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./\\.\\./(?!\\.\\./test/support/)',
              message: 'src/core imports only src/core (and, in a spec, test/support).',
            },
            { group: ['@nestjs/*', 'ioredis'], message: 'src/core is framework- and store-free.' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/redis/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../*', '!../core', '!../core/*'],
              message: 'src/redis imports only src/core and itself.',
            },
            { group: ['@nestjs/*'], message: 'src/redis is framework-free.' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['ioredis', './redis', './redis/*'],
              message: 'The root entry never reaches Redis: it is nestjs-backpressure/redis.',
            },
            {
              group: [
                'prom-client',
                '@opentelemetry/*',
                './prometheus',
                './prometheus/*',
                './opentelemetry',
                './opentelemetry/*',
                './metrics/*',
              ],
              message:
                'The root entry never reaches the metrics integrations: they are nestjs-backpressure/prometheus and /opentelemetry.',
            },
            {
              group: ['@nestjs/terminus', './terminus', './terminus/*'],
              message: 'The root entry never reaches terminus: it is nestjs-backpressure/terminus.',
            },
          ],
        },
      ],
    },
  },
  // Metrics: src/metrics is what both integrations share, exporter-free; each integration uses
  // its own library only, so a Prometheus user need not install OpenTelemetry and vice versa.
  {
    files: ['src/metrics/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['prom-client', '@opentelemetry/*', '@nestjs/*', 'ioredis', '../redis/*'],
              message: 'src/metrics is framework-, exporter- and store-free.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/prometheus/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@opentelemetry/*', '../opentelemetry/*', 'ioredis', '../redis/*'],
              message: 'nestjs-backpressure/prometheus needs prom-client only.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/opentelemetry/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['prom-client', '../prometheus/*', 'ioredis', '../redis/*'],
              message: 'nestjs-backpressure/opentelemetry needs @opentelemetry/api only.',
            },
          ],
        },
      ],
    },
  },
  // Health: nestjs-backpressure/terminus needs @nestjs/terminus only (no exporter, no store).
  {
    files: ['src/terminus/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                'prom-client',
                '@opentelemetry/*',
                '../prometheus/*',
                '../opentelemetry/*',
                'ioredis',
                '../redis/*',
                '../core/shared/*',
              ],
              message: 'nestjs-backpressure/terminus needs @nestjs/terminus only.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.spec.ts', 'test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  prettier,
);
