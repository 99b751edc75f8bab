/**
 * The import rule of the request path (README "Architecture"): front -> route -> upstream, one
 * way only; the ring imports nothing but the ring; membership does not reach into the request
 * path above the transport. Type-only imports count (tsPreCompilationDeps), so a `import type`
 * across a layer fails as well. Run by `npm test` (npm run layers) and so by CI.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'upstream-imports-upward',
      comment: 'src/upstream/ moves bytes to replicas; it must not know about routing or the fronts.',
      severity: 'error',
      from: { path: '^src/upstream/' },
      to: { path: '^src/(route|front)/' },
    },
    {
      name: 'route-imports-front',
      comment: 'src/route/ picks and retries; the fronts are adapters passed in, never imported.',
      severity: 'error',
      from: { path: '^src/route/' },
      to: { path: '^src/front/' },
    },
    {
      name: 'ring-imports-outside-ring',
      comment: 'src/ring/ is a pure data structure: it imports only src/ring/ (and node: core).',
      severity: 'error',
      from: { path: '^src/ring/' },
      to: { pathNot: '^src/ring/', dependencyTypesNot: ['core'] },
    },
    {
      name: 'membership-imports-request-path',
      comment: 'Membership changes the ring and the pools; it never depends on how requests enter or are routed.',
      severity: 'error',
      from: { path: '^src/membership/' },
      to: { path: '^src/(route|front)/' },
    },
    {
      name: 'cluster-only-from-main',
      comment: 'src/cluster/ (--workers: primary, workers, snapshots) wires the layers together as app.ts does; only main.ts starts it, nothing in the layers may depend on it.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(cluster/|main\\.ts$)' },
      to: { path: '^src/cluster/' },
    },
    {
      name: 'no-circular',
      comment: 'A cycle would make the layer order meaningless.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
}
