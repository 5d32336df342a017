import { useEffect, useState } from "preact/hooks";
import { messageOf } from "../api";

/**
 * What `load` answers, asked again whenever `inputs` change. An answer that arrives after newer inputs is
 * dropped, so a slow old page never overwrites the one asked for last.
 */
export function useLoad<T>(load: () => Promise<T>, inputs: readonly unknown[]) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  useEffect(() => {
    let current = true;
    setLoading(true);
    setError(null);
    load().then(
      (answer) => {
        if (!current) return;
        setData(answer);
        setLoading(false);
      },
      (failure) => {
        if (!current) return;
        setError(messageOf(failure));
        setLoading(false);
      },
    );
    return () => {
      current = false;
    };
    // The caller names what the load depends on, as with useEffect.
  }, inputs);
  return { data, error, loading, setData };
}
