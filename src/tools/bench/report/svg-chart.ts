/**
 * A small dependency-free SVG line chart: panels side by side sharing one
 * legend, a log-scale x axis (batch sizes span 1 to 1000) and a linear y
 * axis from zero, so heights compare honestly.
 */

export interface Series {
  name: string;
  color: string;
  /** Dashed lines mark reference series (the raw ceiling). */
  dashed?: boolean;
  points: { x: number; y: number }[];
}

export interface Panel {
  title: string;
  series: Series[];
}

export interface ChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  panels: Panel[];
}

const panelWidth = 520;
const panelHeight = 360;
const margin = { top: 56, right: 24, bottom: 56, left: 78 };
const legendWidth = 230;

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A round upper bound and step for a y axis reaching `max`. */
function niceScale(max: number): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.2 };
  const rough = max / 5;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= rough)!;
  return { top: Math.ceil(max / step) * step, step };
}

function formatCount(value: number): string {
  if (value >= 1_000_000) return `${(value / 1_000_000).toFixed(value % 1_000_000 === 0 ? 0 : 1)}M`;
  if (value >= 1000) return `${(value / 1000).toFixed(value % 1000 === 0 ? 0 : 1)}k`;
  return String(value);
}

/** Renders the chart as a standalone SVG document. */
export function renderChart(spec: ChartSpec): string {
  const all = spec.panels.flatMap((p) => p.series.flatMap((s) => s.points));
  const xs = all.map((p) => p.x);
  const xMin = Math.min(...xs, 1);
  const xMax = Math.max(...xs, 10);
  const { top, step } = niceScale(Math.max(...all.map((p) => p.y), 0));
  const logMin = Math.log10(xMin) - 0.1;
  const logMax = Math.log10(xMax) + 0.1;
  const plotW = panelWidth - margin.left - margin.right;
  const plotH = panelHeight - margin.top - margin.bottom;
  const width = spec.panels.length * panelWidth + legendWidth;
  const height = panelHeight + 20;
  const xTicks = [...new Set(xs)].sort((a, b) => a - b);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${escapeXml(spec.title)}</text>`);

  spec.panels.forEach((panel, index) => {
    const ox = index * panelWidth + margin.left;
    const oy = margin.top;
    const px = (x: number) => ox + ((Math.log10(x) - logMin) / (logMax - logMin)) * plotW;
    const py = (y: number) => oy + plotH - (y / top) * plotH;
    out.push(`<text x="${ox + plotW / 2}" y="${oy - 12}" text-anchor="middle" font-size="14">${escapeXml(panel.title)}</text>`);
    for (let y = 0; y <= top + step / 2; y += step) {
      out.push(`<line x1="${ox}" x2="${ox + plotW}" y1="${py(y)}" y2="${py(y)}" stroke="#e3e3e3"/>`);
      out.push(`<text x="${ox - 8}" y="${py(y) + 4}" text-anchor="end">${formatCount(y)}</text>`);
    }
    for (const x of xTicks) {
      out.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${oy}" y2="${oy + plotH}" stroke="#f0f0f0"/>`);
      out.push(`<text x="${px(x)}" y="${oy + plotH + 18}" text-anchor="middle">${x}</text>`);
    }
    out.push(`<rect x="${ox}" y="${oy}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`);
    out.push(`<text x="${ox + plotW / 2}" y="${oy + plotH + 40}" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`);
    out.push(
      `<text transform="translate(${ox - 60} ${oy + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(spec.yLabel)}</text>`,
    );
    for (const series of panel.series) {
      const points = [...series.points].sort((a, b) => a.x - b.x);
      if (points.length === 0) continue;
      const dash = series.dashed ? ` stroke-dasharray="6 4"` : "";
      if (points.length > 1) {
        const d = points.map((p, i) => `${i === 0 ? "M" : "L"}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(" ");
        out.push(`<path d="${d}" fill="none" stroke="${series.color}" stroke-width="2"${dash}/>`);
      }
      for (const p of points) {
        out.push(
          `<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3.5" fill="${series.color}"><title>${escapeXml(`${series.name}, ${p.x}/batch: ${Math.round(p.y)} events/s`)}</title></circle>`,
        );
      }
    }
  });

  const names = new Map<string, Series>();
  for (const panel of spec.panels) for (const s of panel.series) if (s.points.length > 0 && !names.has(s.name)) names.set(s.name, s);
  let ly = margin.top + 4;
  const lx = spec.panels.length * panelWidth + 8;
  for (const s of names.values()) {
    out.push(`<line x1="${lx}" x2="${lx + 28}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ` stroke-dasharray="6 4"` : ""}/>`);
    out.push(`<circle cx="${lx + 14}" cy="${ly}" r="3.5" fill="${s.color}"/>`);
    out.push(`<text x="${lx + 36}" y="${ly + 4}">${escapeXml(s.name)}</text>`);
    ly += 22;
  }
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
