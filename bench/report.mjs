// The benchmark report: the macro table (tsbuild's figures and the tsbuild/peer ratio in every peer cell), the
// micro table, and a hand-written SVG bar chart of the wall-time ratios on a log scale with the 1.0 line.
import { SCENARIOS } from "./macro.mjs";
import { fmtMs, fmtBytes, fmtRatio } from "./lib/measure.mjs";

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const ratio = (a, b) => (a != null && b != null && b > 0 ? a / b : null);

function hitsCell(r) {
  if (!r || r.status !== "ok") return "";
  if (r.hitCheck === "pending") return "pending (no --metadata-file yet)";
  const digest = r.digestCheck === "FAIL" ? " digest FAIL" : "";
  return `${r.hits}/${r.total} ${r.hitCheck}${digest}`;
}

function statusCell(r) {
  return r ? (r.note ?? r.status) : "–";
}

/** One row per project × scenario. */
export function macroTable(results, peers) {
  const head = ["project", "scenario", "tsbuild wall", "RSS", "disk", "hits"];
  for (const p of peers) head.push(`${p.label} wall (ts/${p.label})`, "RSS (ratio)", "disk", "hits");
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const proj of results) {
    for (const sc of Object.keys(SCENARIOS)) {
      const ts = proj.builders.tsbuild?.[sc];
      if (!ts) continue;
      const row = [proj.project.name, SCENARIOS[sc]];
      const floor = ts.floorMs != null ? ` (node -e 0: ${fmtMs(ts.floorMs)})` : "";
      if (ts.status === "ok") row.push(`${fmtMs(ts.ms)}${floor}`, fmtBytes(ts.rssKB * 1024), fmtBytes(ts.bytes), hitsCell(ts));
      else row.push(statusCell(ts), "", "", "");
      for (const p of peers) {
        const r = p.status === "ok" ? proj.builders[p.name]?.[sc] : { note: p.note };
        if (r && r.status === "ok") {
          const tsOk = ts.status === "ok";
          row.push(
            `${fmtMs(r.ms)} ${tsOk ? fmtRatio(ratio(ts.ms, r.ms)) : ""}`.trim(),
            `${fmtBytes(r.rssKB * 1024)} ${tsOk ? fmtRatio(ratio(ts.rssKB, r.rssKB)) : ""}`.trim(),
            fmtBytes(r.bytes),
            hitsCell(r),
          );
        } else row.push(statusCell(r), "", "", "");
      }
      lines.push(`| ${row.join(" | ")} |`);
    }
  }
  return lines.join("\n");
}

export function microTable(rows) {
  return ["| figure | tsbuild | machine limit, same run |", "|---|---|---|", ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

/** Horizontal bars, one per (project, scenario, peer): tsbuild wall time / peer wall time on a log axis. */
export function ratioChartSvg(results, peers, title) {
  const colors = { buildkit: "#2f6fb5", buildah: "#d9822b" };
  const bars = [];
  for (const proj of results) {
    for (const sc of Object.keys(SCENARIOS)) {
      const ts = proj.builders.tsbuild?.[sc];
      if (!ts || ts.status !== "ok") continue;
      for (const p of peers) {
        const r = proj.builders[p.name]?.[sc];
        const v = r && r.status === "ok" ? ratio(ts.ms, r.ms) : null;
        if (v) bars.push({ label: `${proj.project.name} · ${SCENARIOS[sc]}`, peer: p, v });
      }
    }
  }
  const W = 900;
  const left = 300;
  const right = 70;
  const top = 50;
  const barH = 14;
  const gap = 4;
  const H = top + Math.max(1, bars.length) * (barH + gap) + 50;
  const vals = bars.map((b) => b.v);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.min(0.5, ...vals))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(2, ...vals))));
  const x = (v) => left + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (W - left - right);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`];
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="${W / 2}" y="34" text-anchor="middle" fill="#555">tsbuild wall time ÷ peer wall time (log scale; left of 1.0 = tsbuild faster)</text>`);
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    for (const m of [1, 2, 5]) {
      const v = d * m;
      if (v > hi * 1.0001) break;
      const xx = x(v);
      out.push(`<line x1="${xx.toFixed(1)}" y1="${top - 4}" x2="${xx.toFixed(1)}" y2="${H - 40}" stroke="${m === 1 ? "#bbb" : "#eee"}"/>`);
      out.push(`<text x="${xx.toFixed(1)}" y="${H - 26}" text-anchor="middle" fill="#555">${v >= 1 ? v : v.toPrecision(1)}</text>`);
    }
  }
  bars.forEach((b, i) => {
    const y = top + i * (barH + gap);
    const x1 = x(1);
    const xv = x(b.v);
    out.push(`<text x="${left - 6}" y="${y + barH - 3}" text-anchor="end">${esc(b.label)}</text>`);
    out.push(
      `<rect x="${Math.min(x1, xv).toFixed(1)}" y="${y}" width="${Math.max(1, Math.abs(xv - x1)).toFixed(1)}" height="${barH}" fill="${colors[b.peer.name] ?? "#777"}"><title>${esc(`${b.label} vs ${b.peer.label}: ×${b.v.toFixed(3)}`)}</title></rect>`,
    );
    out.push(`<text x="${(Math.max(x1, xv) + 4).toFixed(1)}" y="${y + barH - 3}" fill="#333">×${b.v < 10 ? b.v.toFixed(2) : b.v.toFixed(0)}</text>`);
  });
  out.push(`<line x1="${x(1).toFixed(1)}" y1="${top - 8}" x2="${x(1).toFixed(1)}" y2="${H - 40}" stroke="#000" stroke-width="1.5"/>`);
  out.push(`<text x="${x(1).toFixed(1)}" y="${top - 10}" text-anchor="middle">1.0</text>`);
  let lx = left;
  for (const p of peers) {
    out.push(
      `<rect x="${lx}" y="${H - 16}" width="12" height="10" fill="${colors[p.name] ?? "#777"}"/><text x="${lx + 16}" y="${H - 7}">vs ${esc(p.label)}${p.status === "ok" ? "" : ` (${esc(p.note)})`}</text>`,
    );
    lx += 260;
  }
  if (bars.length === 0) out.push(`<text x="${W / 2}" y="${top + 10}" text-anchor="middle">no peer measured in this run</text>`);
  out.push("</svg>");
  return out.join("\n") + "\n";
}
