// Files the account uploaded through the Files API: what they are, when they expire, whether they were scanned; delete.
import { useState } from "preact/hooks";
import { graphql, request, type ResultOf } from "../api";
import { ConfirmDialog, DataTable, ErrorText, Pager, Status } from "../components/ui";
import { bytes, when } from "../lib/format";
import { useKeysetPages } from "../lib/keyset-pages";
import { useLoad } from "../lib/use-load";

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
  const [deleting, setDeleting] = useState<FileRow | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [reloads, setReloads] = useState(0);
  const { data: page, error } = useLoad(async () => (await request(FILES, { first: FILES_PAGE, after: pages.after })).files, [pages.after, reloads]);

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
        <DataTable caption="Files" columns={["Name", "Size", "Type", "Uploaded", "Expires", "Virus scan", { hidden: "Actions" }]}>
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
        </DataTable>
      )}
      <Pager label="Files" pages={pages} nextCursor={page?.nextCursor} />
      {deleting && (
        <ConfirmDialog
          title={`Delete ${deleting.filename}?`}
          confirmLabel="Delete file"
          onCancel={() => setDeleting(null)}
          onConfirm={async () => {
            await request(DELETE_FILE, { id: deleting.id });
            setDeleting(null);
            setStatus(`Deleted ${deleting.filename}.`);
            setReloads((n) => n + 1);
          }}
        >
          <p>Requests that name this file ({deleting.id}) will be refused from now on. This cannot be undone.</p>
        </ConfirmDialog>
      )}
    </>
  );
}
