// Types of parity-layers.mjs for test/parity.test.ts.
export function layerLines(file: string): Promise<string[]>;
export function archiveListing(dir: string, skip: number): Promise<string[]>;
export function archiveLayers(dir: string): string[];
