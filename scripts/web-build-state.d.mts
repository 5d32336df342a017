export function webBuildState(root: string): "missing" | "stale" | "current" | "prebuilt";
