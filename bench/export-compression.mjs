// Export compression measured for parallelism, not only wall time: tsbuild's own compressLayerStream (dist/) on one
// ~200 MB layer tar, into a sha256-hashing sink like the content store's writer. Per compressor, beside wall time:
//  - cpu/wall: CPU time (user + sys of this process's threads, libuv's zlib workers included, plus its reaped
//    children — pigz, zstd — from /proc/self/stat's cutime/cstime) over wall time: the cores it got;
//  - demand: per thread, time on a CPU + time runnable but waiting for one (/proc/<pid>/task/<tid>/schedstat), summed
//    over this process's worker threads and its children's threads, over wall time: the cores it kept busy or asked
//    for. A compressor starved of input blocks and asks for less; one that overlaps asks for ~one core per busy
//    thread. Unlike cpu/wall it does not shrink when the machine is busy (with sched_autogroup, Debian's default, a
//    session's threads share one slice of a contended machine, so cpu/wall there says as much about the neighbours).
// One-core gzip (one zlib stream) runs in every round beside the others, so each ratio compares figures taken under
// the same load; rounds rotate the order and medians are reported, with the load average and CPU pressure.
import { createReadStream, readdirSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { availableParallelism, loadavg } from "node:os";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { median, hasCommand } from "./lib/measure.mjs";

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;

/** CPU milliseconds so far: this process (all threads) and its waited-for children. */
function cpuMs() {
  const r = process.resourceUsage();
  const stat = readFileSync("/proc/self/stat", "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // f[0] is field 3 (state)
  return { self: (r.userCPUTime + r.systemCPUTime) / 1000, children: ((Number(f[13]) + Number(f[14])) * 1000) / CLK_TCK };
}

/** schedstat of every thread of `pid`: tid → [ns on a CPU, ns waiting on a run queue]. */
function threadTimes(pid, into = new Map()) {
  let tids;
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return into; // exited
  }
  for (const tid of tids) {
    try {
      const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ").map(Number);
      into.set(`${pid}/${tid}`, [run, wait]);
    } catch {
      // thread gone
    }
  }
  return into;
}

/** Children's threads, sampled every 20 ms while a compression runs (their counters vanish when they are reaped). */
function watchChildren() {
  const last = new Map();
  const sample = () => {
    for (const tid of readdirSync("/proc/self/task"))
      try {
        for (const c of readFileSync(`/proc/self/task/${tid}/children`, "utf8").split(" ").filter(Boolean)) threadTimes(c, last);
      } catch {
        // thread gone
      }
  };
  const timer = setInterval(sample, 20);
  return () => {
    clearInterval(timer);
    sample();
    return last;
  };
}

/** Sum of on-CPU + run-queue ns over `after`'s threads, minus what `before` had of the same threads. */
function demandNs(before, after) {
  let ns = 0;
  for (const [k, [run, wait]] of after) {
    const [r0, w0] = before.get(k) ?? [0, 0];
    ns += run - r0 + (wait - w0);
  }
  return ns;
}

/** CPU pressure (PSI "some" avg10): % of time some runnable task waited for a CPU; null where the kernel lacks PSI. */
function cpuPressure() {
  try {
    return Number(/avg10=([\d.]+)/.exec(readFileSync("/proc/pressure/cpu", "utf8"))?.[1]);
  } catch {
    return null;
  }
}

/** Hashes what it is given, as the store's blob writer does, and keeps only the byte count. */
class DigestSink extends Writable {
  hash = createHash("sha256");
  bytes = 0;
  _write(chunk, _enc, cb) {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb();
  }
}

async function measureOnce(layer, compress) {
  const load = loadavg()[0];
  const psi = cpuPressure();
  const own0 = threadTimes(process.pid);
  const stopWatching = watchChildren();
  const c0 = cpuMs();
  const t0 = performance.now();
  const sink = new DigestSink();
  await compress(createReadStream(layer, { highWaterMark: 256 * 1024 }), sink);
  sink.hash.digest();
  const ms = performance.now() - t0;
  const c1 = cpuMs();
  const kids = stopWatching();
  const cpu = c1.self - c0.self + (c1.children - c0.children);
  // Node's main thread is left out: it only hands data around, but every one of its many wake-ups waits on a busy
  // run queue, which would count as demand it does not have on an idle machine.
  const own1 = threadTimes(process.pid);
  own1.delete(`${process.pid}/${process.pid}`);
  const demand = (demandNs(own0, own1) + demandNs(new Map(), kids)) / 1e6 / ms;
  return { ms, cpu, demand, out: sink.bytes, load, psi };
}

/**
 * Rows per compressor: { name, ms, MBs, parallelism (cpu/wall), demand (see the top), vsOneCore (throughput ÷
 * one-core gzip's, same round), MBperCpuS, ratio (input/output), load, psi } — medians over `rounds`.
 * `distDir` is a built tsbuild's dist/ (npm run build).
 */
export async function exportCompression({ distDir, layer, bytes, rounds }) {
  const { compressLayerStream, gzipEngine } = await import(join(distDir, "layer/compress-layer.js"));
  const noPigz = { ...process.env, TSBUILD_NO_PIGZ: "1" };
  const variants = [
    { name: "gzip -6, one core (one zlib stream)", one: true, run: (src, dest) => pipeline(src, createGzip({ level: 6 }), dest) },
    ...(gzipEngine() === "pigz"
      ? [{ name: `gzip -6, pigz -p ${availableParallelism()}`, run: (src, dest) => compressLayerStream(src, dest, { format: "gzip" }) }]
      : []),
    { name: "gzip -6, zlib members on the thread pool", run: (src, dest) => compressLayerStream(src, dest, { format: "gzip", env: noPigz }) },
    ...(hasCommand("zstd") ? [{ name: `zstd -3 -T${availableParallelism()}`, run: (src, dest) => compressLayerStream(src, dest, { format: "zstd" }) }] : []),
  ];
  const samples = variants.map(() => []);
  for (let r = 0; r < rounds; r++) {
    const order = variants.map((_, i) => (i + r) % variants.length);
    const got = [];
    for (const i of order) got[i] = await measureOnce(layer, variants[i].run);
    const one = got[variants.findIndex((v) => v.one)];
    got.forEach((g, i) => samples[i].push({ ...g, vsOneCore: one.ms / g.ms }));
  }
  const mb = bytes / 1e6;
  return variants.map((v, i) => {
    const s = samples[i];
    const m = (f) => median(s.map(f));
    const ms = m((x) => x.ms);
    return {
      name: v.name,
      ms,
      MBs: Math.round(mb / (ms / 1000)),
      parallelism: Number(m((x) => x.cpu / x.ms).toFixed(2)),
      demand: Number(m((x) => x.demand).toFixed(2)),
      vsOneCore: Number(m((x) => x.vsOneCore).toFixed(2)),
      MBperCpuS: Math.round(m((x) => mb / (x.cpu / 1000))),
      ratio: Number(m((x) => bytes / x.out).toFixed(2)),
      load: Number(m((x) => x.load).toFixed(2)),
      psi: s.some((x) => x.psi === null) ? null : Math.round(m((x) => x.psi)),
      rounds,
    };
  });
}

/** One table row per compressor: figure, tsbuild, what it is compared with. */
export function exportCompressionRows(rows, layerMB) {
  return rows.map((e) => [
    `export compression of a ${layerMB} MB layer: ${e.name}`,
    `${Math.round(e.ms)} ms = ${e.MBs} MB/s; cpu/wall ${e.parallelism}, demand ${e.demand} cores; ${e.MBperCpuS} MB per cpu-s; ratio ${e.ratio}`,
    `${e.vsOneCore}× one-core gzip in the same rounds (median of ${e.rounds}; load ${e.load}, cpu pressure ${e.psi ?? "?"}% on ${availableParallelism()} cores)`,
  ]);
}
