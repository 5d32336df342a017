/** The named fields a request set (neither absent nor null), for the upstream, which receives them unchanged. */
export function passThrough<T extends Record<string, unknown>>(body: T, keys: ReadonlyArray<keyof T>): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const key of keys) if (body[key] !== undefined && body[key] !== null) params[key as string] = body[key];
  return params;
}
