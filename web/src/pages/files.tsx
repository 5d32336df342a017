// Files the account uploaded through the Files API: what they are, when they expire, whether they were scanned; delete.
import { useEffect, useState } from "preact/hooks";
import { graphql, messageOf, request, type ResultOf } from "../api";
import { ConfirmDialog, ErrorText, Pager, Status } from "../components/ui";
import { bytes, when } from "../lib/format";
import { useKeysetPages } from "../lib/keyset-pages";

const FILES = graphql(`
  query Files($first: Int!, $after: String) {
    files(first: $first, after: $after) {
      nodes {
        id
        filename
        bytes
        purpose
        mimeType
        scanStatus
        createdAt
        expiresAt
      }
      nextCursor
    }
  }
`);

const DELETE_FILE = graphql(`
  mutation DeleteFile($id: ID!) {
    deleteFile(id: $id) {
      id
      deleted
    }
  }
`);

type FileRow = ResultOf<typeof FILES>["files"]["nodes"][number];

const FILES_PAGE = 20;
const SCAN_STATUS: Record<string, string> = { scanned: "Scanned, clean", unscanned: "Not scanned" };

export function FilesPage() {
  const pages = useKeysetPages();
  const [page, setPage] = useState<ResultOf<typeof FILES>["files"] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<FileRow | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [reloads, setReloads] = useState(0);

  useEffect(() => {
    let current = true;
    request(FILES, { first: FILES_PAGE, after: pages.after }).then(
      (data) => {
        if (!current) return;
        setPage(data.files);
        setError(null);
      },
      (failure) => current && setError(messageOf(failure)),
    );
    return () => {
      current = false;
    };
  }, [pages.after, reloads]);

  return (
    <>
      <h1>Files</h1>
      <p>
        Files your apps uploaded (<code>POST /v1/files</code>). Each is kept for 30 days from its last upload, then deleted.
      </p>
      <ErrorText error={error} />
      {status && <Status>{status}</Status>}
      {page === null ? (
        !error && <p>Loading files…</p>
      ) : page.nodes.length === 0 ? (
        <p>No files{pages.page > 1 ? " on this page" : " yet"}.</p>
      ) : (
        <div class="table-scroll">
          <table>
            <caption class="visually-hidden">Files</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Size</th>
                <th scope="col">Type</th>
                <th scope="col">Uploaded</th>
                <th scope="col">Expires</th>
                <th scope="col">Virus scan</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {page.nodes.map((file) => (
                <tr key={file.id}>
                  <th scope="row" class="filename">
                    {file.filename}
                  </th>
                  <td class="num">{bytes(file.bytes)}</td>
                  <td>{file.mimeType}</td>
                  <td>{when(file.createdAt)}</td>
                  <td>{when(file.expiresAt)}</td>
                  <td>{SCAN_STATUS[file.scanStatus] ?? file.scanStatus}</td>
                  <td class="row-actions">
                    <button type="button" class="danger" aria-label={`Delete ${file.filename}`} onClick={() => setDeleting(file)}>
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Pager
        label="Files"
        page={pages.page}
        hasPrevious={pages.hasPrevious}
        hasNext={Boolean(page?.nextCursor)}
        onPrevious={pages.previous}
        onNext={() => page?.nextCursor && pages.next(page.nextCursor)}
      />
      {deleting && (
        <DeleteDialog
          file={deleting}
          onDone={(deleted) => {
            setDeleting(null);
            if (deleted) {
              setStatus(`Deleted ${deleted.filename}.`);
              setReloads((n) => n + 1);
            }
          }}
        />
      )}
    </>
  );
}

function DeleteDialog({ file, onDone }: { file: FileRow; onDone: (deleted: FileRow | null) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <ConfirmDialog
      title={`Delete ${file.filename}?`}
      confirmLabel="Delete file"
      busy={busy}
      error={error}
      onCancel={() => onDone(null)}
      onConfirm={async () => {
        setBusy(true);
        setError(null);
        try {
          await request(DELETE_FILE, { id: file.id });
          onDone(file);
        } catch (failure) {
          setError(messageOf(failure));
          setBusy(false);
        }
      }}
    >
      <p>Requests that name this file ({file.id}) will be refused from now on. This cannot be undone.</p>
    </ConfirmDialog>
  );
}
