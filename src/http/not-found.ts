/**
 * The paths an app serves, as a tree of segments, filled from the router itself (fastify's `onRoute`)
 * so it can never drift from the routes. Used only to name the first segment a request got wrong,
 * as Graph's 404 does ("Resource not found for the segment 'x'.").
 */
export interface SegmentIndex {
  /** Records a served path; parametric segments (`:id`, `getLicensesForApp(bundleId=:b)`) match anything. */
  add(path: string): void;
  /**
   * The segment Graph's 404 names: the first one that matches nothing served, or, for a path that
   * stops short of a resource (like `/beta/deviceAppManagement`), its last segment.
   */
  unknownSegmentOf(url: string): string;
}

interface SegmentNode {
  readonly children: Map<string, SegmentNode>;
}

const anySegment = '*';

/** An empty index; feed it every route path. */
export function createSegmentIndex(): SegmentIndex {
  const root: SegmentNode = { children: new Map() };
  return {
    add(path) {
      let node = root;
      for (const segment of path.split('/').filter((s) => s !== '')) {
        const key = segment.includes(':') || segment.includes('*') ? anySegment : segment;
        let next = node.children.get(key);
        if (!next) {
          next = { children: new Map() };
          node.children.set(key, next);
        }
        node = next;
      }
    },
    unknownSegmentOf(url) {
      const path = url.split('?')[0] ?? '';
      const segments = path.split('/').filter((s) => s !== '');
      let node: SegmentNode | undefined = root;
      for (const raw of segments) {
        const segment = decodeSafe(raw);
        if (segment === undefined) return raw;
        const next: SegmentNode | undefined = node?.children.get(segment) ?? node?.children.get(anySegment);
        if (next === undefined) return segment;
        node = next;
      }
      return segments.length === 0 ? '' : (decodeSafe(segments[segments.length - 1] ?? '') ?? '');
    },
  };
}

function decodeSafe(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}
