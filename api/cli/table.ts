/**
 * Plain-text rendering for humans. Scripts use --json; nothing here is a
 * stable format.
 */

const COLUMN_GAP = '   ';

/** Left-aligned columns, header first; no trailing spaces. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const renderRow = (cells: readonly string[]): string =>
    widths
      .map((width, column) => (cells[column] ?? '').padEnd(width))
      .join(COLUMN_GAP)
      .trimEnd();
  return [renderRow(headers), ...rows.map(renderRow)].join('\n') + '\n';
}

/** "key: value" lines with the values aligned. */
export function renderKeyValues(pairs: readonly (readonly [string, string])[]): string {
  const keyWidth = Math.max(0, ...pairs.map(([key]) => key.length + 1));
  return pairs.map(([key, value]) => `${`${key}:`.padEnd(keyWidth)} ${value}`.trimEnd()).join('\n') + '\n';
}

/** Machine output: the raw JSON, pretty-printed, one trailing newline. */
export function renderJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
