/**
 * Graph's wire form of an Edm.DateTimeOffset: UTC ISO-8601 with `Z` and only the fraction digits the
 * value has — `2025-03-02T06:54:05Z`, `2025-03-02T06:54:05.5Z`, `2025-03-02T06:54:05.123Z` (Graph
 * writes up to 7 digits; a Date holds milliseconds, so at most 3 here) — trailing zeros dropped.
 * The "never synced" sentinel is `0001-01-01T00:00:00Z`. A whole second therefore parses with
 * `strptime('%Y-%m-%dT%H:%M:%SZ')` (Checkmk) and jq's `fromdateiso8601`, as on Graph.
 *
 * Every date vppd writes to a client goes through this: Graph entities and action/function results,
 * vppd's own API and the dashboard's data. Storage keeps its own formats.
 */
export function formatGraphDateTime(date: Date): string {
  const iso = date.toISOString();
  // `YYYY-MM-DDTHH:MM:SS.mmmZ`: cut the fraction's trailing zeros, and the dot with them if none is left.
  const dot = iso.lastIndexOf('.');
  if (dot < 0) return iso;
  const fraction = iso.slice(dot + 1, -1).replace(/0+$/, '');
  return fraction === '' ? `${iso.slice(0, dot)}Z` : `${iso.slice(0, dot)}.${fraction}Z`;
}
