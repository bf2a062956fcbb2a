import { defineConfig } from "vitest/config";

/**
 * Unit tests: pure code (parsing, planning, keys, formats, policy tables), no root, no runtime, no registry.
 * `npm run test:unit` runs them alone in seconds; `npm test` runs both projects.
 */
/** Scale and end-to-end checks that happen to live beside unit tests: they run with the integration tests. */
const SLOW = ["test/frontend/dockerignore-scale.test.ts", "test/image/config-check.test.ts"];

const UNIT = [
  "test/architecture.test.ts",
  "test/setup-script.test.ts",
  "test/errors.test.ts",
  "test/frontend/**/*.test.ts",
  "test/image/**/*.test.ts",
  "test/progress/**/*.test.ts",
  "test/util/**/*.test.ts",
  "test/fs/**/*.test.ts",
  "test/cache/keys.test.ts",
  "test/cache/cache-manifest.test.ts",
  "test/cache/records.test.ts",
  "test/solver/key-parts.test.ts",
  "test/cache/explain.test.ts",
  "test/executor/cgroups.test.ts",
  "test/executor/seccomp-profile.test.ts",
  "test/executor/setpriv-helper.test.ts",
  "test/executor/bwrap.test.ts",
  "test/executor/user-lookup.test.ts",
  "test/store/layout.test.ts",
  "test/store/store-paths.test.ts",
  "test/store/image-store.test.ts",
  "test/store/content-store.test.ts",
  "test/store/atomic-write.test.ts",
  "test/layer/tar-writer.test.ts",
  "test/layer/tar-tail.test.ts",
  "test/context/locate-dockerfile.test.ts",
  "test/solver/meta.test.ts",
  "test/registry/units.test.ts",
  "test/sources/proxy.test.ts",
  "test/cli/go-template.test.ts",
  "test/cli/userns-reexec.test.ts",
];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests mount, run containers and share apt-installed tools; keep files in separate forks.
    pool: "forks",
    projects: [
      { extends: true, test: { name: "unit", include: UNIT, exclude: SLOW } },
      { extends: true, test: { name: "integration", include: ["test/**/*.test.ts"], exclude: UNIT } },
      { extends: true, test: { name: "scale", include: SLOW } },
    ],
  },
});
