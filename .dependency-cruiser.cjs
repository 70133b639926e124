// Architecture rules for `npm run lint` (docs/architecture.md, "Parts and dependency direction").
// Each rule forbids one kind of import; the comment says what the rule protects.
const project = '^(src|test|bench|scripts)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      // The domain is the bottom layer: pure rules every other part may use, so it may use none of them.
      name: 'domain-is-pure',
      severity: 'error',
      from: { path: '^src/domain/' },
      to: { path: project, pathNot: '^src/domain/' },
    },
    {
      // The Apple client speaks Apple's API in domain terms; it knows nothing of storage, sync or HTTP.
      name: 'apple-only-domain',
      severity: 'error',
      from: { path: '^src/apple/' },
      to: { path: project, pathNot: '^src/(apple|domain)/' },
    },
    {
      // The simulator imitates Apple, not vppd: sharing vppd's client or services would hide mismatches.
      name: 'apple-sim-only-domain',
      severity: 'error',
      from: { path: '^src/apple-sim/' },
      to: { path: project, pathNot: '^src/(apple-sim|domain)/' },
    },
    {
      // Storage sits under the services and every HTTP surface; importing them would invert the layers.
      name: 'storage-below-services-and-http',
      severity: 'error',
      from: { path: '^src/storage/' },
      to: { path: ['^src/(sync|http|server|graph|vppd-api|web)/', '^node_modules/(fastify|@fastify)/'] },
    },
    {
      // Each storage engine's driver is known to its own folder only (docs/architecture.md, "Storage
      // engines"): everything else goes through the StorageEngine interface, so an engine can change
      // or be added without touching a store.
      name: 'sqlite-driver-only-in-storage-sqlite',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/storage/sqlite/' },
      to: { path: '^node_modules/(better-sqlite3|@types/better-sqlite3)/' },
    },
    {
      name: 'postgres-driver-only-in-storage-postgres',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/storage/postgres/' },
      to: { path: '^node_modules/(pg|pg-[^/]+|@types/pg|pgpass|postgres-[^/]+)/' },
    },
    {
      // Graph routes read the database and ask services for work; they never call Apple themselves.
      name: 'graph-never-apple',
      severity: 'error',
      from: { path: '^src/graph/' },
      to: { path: '^src/apple/' },
    },
    {
      // http/ is the plumbing every surface shares; a surface-specific import would tie them together.
      name: 'http-shared-by-surfaces',
      severity: 'error',
      from: { path: '^src/http/' },
      to: { path: '^src/(graph|vppd-api|web|server)/' },
    },
    {
      // server/ composes the surfaces; they register routes on the app it hands them and never reach back.
      name: 'surfaces-never-import-server',
      severity: 'error',
      from: { path: '^src/(graph|vppd-api|web|ops)/' },
      to: { path: '^src/server/' },
    },
    {
      // A file-level cycle means neither file can be understood, tested or moved without the other.
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      // A cycle between top-level folders means two parts are really one; keep the layering a DAG.
      name: 'no-circular-folders',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/[^/]+$' },
      to: { path: '^src/[^/]+$', circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // The rules are about the product. Tests (unit tests beside the code included) may reach across layers
    // to check them, e.g. a storage test that asserts what the HTTP response cache keeps.
    exclude: { path: '\\.test\\.ts$' },
    tsConfig: { fileName: 'tsconfig.json' },
    // Type-only imports are dependencies of the design too.
    tsPreCompilationDeps: true,
  },
};
