import { useState } from "preact/hooks";
import { messageOf } from "../api";

/**
 * One user action at a time (a form's submit, a dialog's confirm): busy while it runs, and its failure in words.
 * On success the action stays busy: the form is left behind (a new page, a closed dialog) or the page moves on.
 */
export function useAction(describe: (failure: unknown) => string = messageOf) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async (work: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (failure) {
      setError(describe(failure));
      setBusy(false);
    }
  };
  /** A form's onSubmit: the browser's own submit held back, then `work` run. */
  const submit = (work: () => Promise<void>) => (event: Event) => {
    event.preventDefault();
    void run(work);
  };
  return { busy, error, setError, run, submit };
}

/** A text field's value and its onInput, to spread on an <input> or <textarea>. */
export function useField(initial = "") {
  const [value, setValue] = useState(initial);
  return {
    value,
    onInput: (event: Event) => setValue((event.currentTarget as HTMLInputElement | HTMLTextAreaElement).value),
  };
}
