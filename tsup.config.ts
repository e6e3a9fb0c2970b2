import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'testing/index': 'src/testing/index.ts',
    'testing/arbitraries': 'src/testing/arbitraries-entry.ts',
    prometheus: 'src/prometheus.ts',
    redis: 'src/redis.ts',
    http: 'src/http.ts',
    otel: 'src/otel.ts',
    queue: 'src/queue.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: false,
  treeshake: true,
  // Whitespace and syntax only: names stay as written, so stack traces stay readable.
  minifyWhitespace: true,
  minifySyntax: true,
});
