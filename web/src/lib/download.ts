// Browser-only: kept apart from csv.ts, which the unit tests run in Node.

/** Saves `csv` as a file the browser downloads; with a byte-order mark, so spreadsheets read it as UTF-8. */
export function downloadCsv(filename: string, csv: string): void {
  const url = URL.createObjectURL(new Blob(["\uFEFF", csv], { type: "text/csv;charset=utf-8" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  // Some browsers start the download only after this turn of the event loop.
  setTimeout(() => URL.revokeObjectURL(url), 0);
}
