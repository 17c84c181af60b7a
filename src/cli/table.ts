/** Which way a column's cells line up: numbers right, words left. */
export type Align = "left" | "right";

/** A column of a human table: its heading and which way it aligns. */
export interface Column {
  heading: string;
  align?: Align;
}

/**
 * Lays rows out under their headings, columns two spaces apart and as wide
 * as their widest cell, the last column left ragged (payloads are long).
 * For people: scripts take --json.
 */
export function tableLines(columns: Column[], rows: string[][]): string[] {
  const widths = columns.map((c, i) => Math.max(c.heading.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    columns
      .map((c, i) => {
        const cell = cells[i] ?? "";
        if (i === columns.length - 1) return c.align === "right" ? cell.padStart(widths[i]!) : cell;
        return c.align === "right" ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!);
      })
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.heading)), ...rows.map(line)];
}
