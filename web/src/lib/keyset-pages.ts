import { useState } from "preact/hooks";

/**
 * The cursors of the pages visited: the API pages forward only (`first`/`after`), so going back
 * is returning to a cursor already seen. Page 1 has none.
 */
export function useKeysetPages() {
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const after = cursors.at(-1) ?? null;
  return {
    after,
    page: cursors.length,
    hasPrevious: cursors.length > 1,
    next: (nextCursor: string) => setCursors((seen) => [...seen, nextCursor]),
    previous: () => setCursors((seen) => (seen.length > 1 ? seen.slice(0, -1) : seen)),
    reset: () => setCursors([null]),
  };
}
