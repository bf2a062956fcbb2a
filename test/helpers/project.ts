// A build context on disk for a test: BASE/NAME with a Dockerfile and any other files (parent dirs created).
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

export async function writeProject(base: string, name: string, dockerfile: string, files: Record<string, string> = {}): Promise<string> {
  const p = join(base, name);
  await mkdir(p, { recursive: true });
  await writeFile(join(p, "Dockerfile"), dockerfile);
  for (const [f, c] of Object.entries(files)) {
    await mkdir(dirname(join(p, f)), { recursive: true });
    await writeFile(join(p, f), c);
  }
  return p;
}
