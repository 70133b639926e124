import { graphVersions } from '../domain/graph-enum.js';

// The paths vppd serves, as a tree of segments (`*` = any key). Used only to name the first segment
// a request got wrong, as Graph does.
type SegmentTree = { readonly [segment: string]: SegmentTree };
const tokenTree: SegmentTree = {
  deviceAppManagement: { vppTokens: { $count: {}, '*': {} } },
  $metadata: {},
};
const servedTree: SegmentTree = Object.fromEntries(graphVersions.map((v) => [v, tokenTree]));

/**
 * The segment Graph's 404 names: the first one that matches nothing served, or, for a path that
 * stops short of a resource (like `/beta/deviceAppManagement`), its last segment.
 */
export function unknownSegmentOf(url: string): string {
  const path = url.split('?')[0] ?? '';
  const segments = path.split('/').filter((s) => s !== '');
  let node: SegmentTree | undefined = servedTree;
  for (const raw of segments) {
    let segment = raw;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return raw;
    }
    const next: SegmentTree | undefined = node?.[segment] ?? node?.['*'];
    if (next === undefined) return segment;
    node = next;
  }
  return segments.length === 0 ? '' : decodeSafe(segments[segments.length - 1] ?? '');
}

function decodeSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
