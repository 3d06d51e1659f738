/** RFC 4180 CSV that pandas reads as it is: empty for a missing value, quotes only where needed, shortest exact numbers. */
export type CsvCell = string | number | boolean | null | undefined;

const field = (v: CsvCell): string => {
  if (v === null || v === undefined) return '';
  if (typeof v !== 'string') return String(v);
  return /[",\r\n]|^\s|\s$/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
};

export function toCsv(columns: readonly string[], rows: ReadonlyArray<readonly CsvCell[]>): string {
  return [columns, ...rows].map((r) => r.map(field).join(',')).join('\n') + '\n';
}
