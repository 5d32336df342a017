import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";
import { useAction } from "../lib/use-action";
import type { useKeysetPages } from "../lib/keyset-pages";

/** An error where it happened, read out by screen readers as it appears. */
export function ErrorText({ error }: { error: string | null }) {
  return error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null;
}

/** A polite status line: "Saved.", "Copied." */
export function Status({ children }: { children: ComponentChildren }) {
  return (
    <p class="status" role="status">
      {children}
    </p>
  );
}

/** A form's error (if its last submit failed) and its submit button, which says what it is doing while busy. */
export function SubmitRow({ busy, error, label, busyLabel = label }: { busy: boolean; error: string | null; label: string; busyLabel?: string }) {
  return (
    <>
      <ErrorText error={error} />
      <button type="submit" class="primary" disabled={busy}>
        {busy ? busyLabel : label}
      </button>
    </>
  );
}

/** A column heading: its text, or a name only screen readers read (the row buttons' column). */
export type Column = string | { hidden: string };

/**
 * A table that scrolls sideways inside its own frame on a narrow screen (the page never does), named by a
 * caption screen readers read (the heading above it shows the same words). The frame takes focus, named
 * as its table, so that a keyboard can scroll it too (WCAG 2.1.1).
 */
export function DataTable({
  caption,
  columns,
  children,
  id,
  tall = false,
}: {
  caption: string;
  columns: readonly Column[];
  children: ComponentChildren;
  id?: string;
  /** Many rows: the frame scrolls down too, its header row staying in view. */
  tall?: boolean;
}) {
  return (
    <div class={tall ? "table-scroll tall" : "table-scroll"} role="group" aria-label={caption} tabIndex={0}>
      <table id={id}>
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            {columns.map((column, index) => (
              <th key={index} scope="col">
                {typeof column === "string" ? column : <span class="visually-hidden">{column.hidden}</span>}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

/**
 * A modal confirmation (the browser's <dialog>: focus moves into it and stays there, Escape cancels).
 * The confirm button's text says what happens ("Revoke key"); a refusal of `onConfirm` is shown in the dialog.
 */
export function ConfirmDialog({
  title,
  children,
  confirmLabel,
  onConfirm,
  onCancel,
}: {
  title: string;
  children: ComponentChildren;
  confirmLabel: string;
  onConfirm: () => Promise<void>;
  onCancel: () => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const { busy, error, run } = useAction();
  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    // Focus returns to what opened the dialog once it closes.
    const opener = document.activeElement as HTMLElement | null;
    element.showModal();
    return () => {
      element.close();
      opener?.focus();
    };
  }, []);
  return (
    <dialog
      ref={dialog}
      class="dialog"
      aria-labelledby="confirm-title"
      onCancel={(event) => {
        event.preventDefault();
        onCancel();
      }}
    >
      <h2 id="confirm-title">{title}</h2>
      {children}
      <ErrorText error={error} />
      <div class="actions">
        <button type="button" class="danger" onClick={() => void run(onConfirm)} disabled={busy}>
          {busy ? "Working…" : confirmLabel}
        </button>
        <button type="button" onClick={onCancel} autofocus>
          Cancel
        </button>
      </div>
    </dialog>
  );
}

/** Keyset pages: "Previous page" goes back through the cursors seen, "Next page" follows the last page's nextCursor. */
export function Pager({ label, pages, nextCursor }: { label: string; pages: ReturnType<typeof useKeysetPages>; nextCursor: string | null | undefined }) {
  return (
    <nav class="pager" aria-label={`${label} pages`}>
      <button type="button" onClick={pages.previous} disabled={!pages.hasPrevious}>
        Previous page
      </button>
      <span>Page {pages.page}</span>
      <button type="button" onClick={() => nextCursor && pages.next(nextCursor)} disabled={!nextCursor}>
        Next page
      </button>
    </nav>
  );
}
