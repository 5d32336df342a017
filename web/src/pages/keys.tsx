// API keys: list, create (the full key shown once), rename, revoke, and which models each may call.
import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { ApiError, graphql, messageOf, request, type ResultOf } from "../api";
import { ConfirmDialog, DataTable, ErrorText, Status, SubmitRow } from "../components/ui";
import { when } from "../lib/format";
import { useAction, useField } from "../lib/use-action";
import { useLoad } from "../lib/use-load";
import { useSession } from "../session";

const KEY_FIELDS = graphql(`
  fragment KeyFields on ApiKey {
    id
    name
    displayPrefix
    displaySuffix
    createdAt
    lastUsedAt
    status
    allowedModels
  }
`);

const KEYS = graphql(
  `
    query Keys {
      keys {
        ...KeyFields
      }
    }
  `,
  [KEY_FIELDS],
);

const CREATE_KEY = graphql(
  `
    mutation CreateKey($name: String!, $allowedModels: [String!]) {
      createKey(name: $name, allowedModels: $allowedModels) {
        key
        apiKey {
          ...KeyFields
        }
      }
    }
  `,
  [KEY_FIELDS],
);

const RENAME_KEY = graphql(
  `
    mutation RenameKey($id: ID!, $name: String!) {
      renameKey(id: $id, name: $name) {
        ...KeyFields
      }
    }
  `,
  [KEY_FIELDS],
);

const REVOKE_KEY = graphql(
  `
    mutation RevokeKey($id: ID!) {
      revokeKey(id: $id) {
        ...KeyFields
      }
    }
  `,
  [KEY_FIELDS],
);

const SET_ALLOWED_MODELS = graphql(
  `
    mutation SetKeyAllowedModels($id: ID!, $allowedModels: [String!]) {
      setKeyAllowedModels(id: $id, allowedModels: $allowedModels) {
        ...KeyFields
      }
    }
  `,
  [KEY_FIELDS],
);

type ApiKey = ResultOf<typeof KEY_FIELDS>;

/** Model ids typed one per line or separated by commas; none means every model (null). */
function parseModelList(text: string): string[] | null {
  const models = [...new Set(text.split(/[\s,]+/).filter((model) => model.length > 0))];
  return models.length > 0 ? models : null;
}

const modelsText = (models: readonly string[] | null) => (models ? models.join(", ") : "");

/** The API's refusal in full: a rate limit also says when to try again. */
function refusal(error: unknown): string {
  if (error instanceof ApiError && error.retryAfter !== null) {
    const minutes = Math.ceil(error.retryAfter / 60);
    return `${error.message} (You can try again in about ${minutes} minute${minutes === 1 ? "" : "s"}.)`;
  }
  return messageOf(error);
}

type Editing = { id: string; what: "name" | "models" } | null;

export function KeysPage() {
  const { account } = useSession();
  const { data: keys, error: loadError, setData: setKeys } = useLoad(async () => (await request(KEYS)).keys, []);
  const [created, setCreated] = useState<{ key: string; name: string } | null>(null);
  const [editing, setEditing] = useState<Editing>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [status, setStatus] = useState<string | null>(null);

  const replace = (key: ApiKey) => setKeys((list) => list?.map((old) => (old.id === key.id ? key : old)) ?? [key]);
  /** A row form's end: the form closes; a saved key takes its row's place, and the status line says what changed. */
  const editDone = (saidOf: (saved: ApiKey) => string) => (saved: ApiKey | null) => {
    setEditing(null);
    if (!saved) return;
    replace(saved);
    setStatus(saidOf(saved));
  };
  const active = keys?.filter((key) => key.status === "active").length ?? 0;
  const { maxActiveKeys, keyCreationsPerHour } = account.limits;

  return (
    <>
      <h1>API keys</h1>
      <p>
        Your apps send a key as <code>Authorization: Bearer sk-…</code>. This account may have up to {maxActiveKeys} active keys (
        {keys ? `${active} now` : "counting…"}) and create up to {keyCreationsPerHour} keys per hour.
      </p>

      {created ? (
        <NewKey created={created} onDone={() => setCreated(null)} />
      ) : (
        <CreateKeyForm
          onCreated={(key, apiKey) => {
            setCreated({ key, name: apiKey.name });
            setKeys((list) => [...(list ?? []), apiKey]);
            setStatus(null);
          }}
        />
      )}

      <h2>Your keys</h2>
      <ErrorText error={loadError} />
      {status && <Status>{status}</Status>}
      {keys === null ? (
        !loadError && <p>Loading keys…</p>
      ) : keys.length === 0 ? (
        <p>No keys yet: create one above.</p>
      ) : (
        <DataTable caption="API keys" columns={["Name", "Key", "Created", "Last used", "Status", "Allowed models", { hidden: "Actions" }]}>
          {keys.map((key) => (
            <tr key={key.id} class={key.status === "revoked" ? "muted" : undefined}>
              <th scope="row">
                {editing?.id === key.id && editing.what === "name" ? (
                  <RenameForm
                    apiKey={key}
                    onDone={editDone((renamed) => `Renamed to “${renamed.name}”.`)}
                  />
                ) : (
                  key.name
                )}
              </th>
              <td>
                <code>
                  {key.displayPrefix}…{key.displaySuffix}
                </code>
              </td>
              <td>{when(key.createdAt)}</td>
              <td>{when(key.lastUsedAt)}</td>
              <td>
                <span class={`badge ${key.status}`}>{key.status === "active" ? "Active" : "Revoked"}</span>
              </td>
              <td>
                {editing?.id === key.id && editing.what === "models" ? (
                  <ModelsForm
                    apiKey={key}
                    onDone={editDone((updated) => `Allowed models of “${updated.name}” saved.`)}
                  />
                ) : key.allowedModels ? (
                  key.allowedModels.join(", ")
                ) : (
                  "Every model"
                )}
              </td>
              <td class="row-actions">
                {key.status === "active" && editing?.id !== key.id && (
                  <>
                    <button type="button" aria-label={`Rename ${key.name}`} onClick={() => setEditing({ id: key.id, what: "name" })}>
                      Rename
                    </button>
                    <button type="button" aria-label={`Allowed models of ${key.name}`} onClick={() => setEditing({ id: key.id, what: "models" })}>
                      Models
                    </button>
                    <button type="button" class="danger" aria-label={`Revoke ${key.name}`} onClick={() => setRevoking(key)}>
                      Revoke
                    </button>
                  </>
                )}
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      {revoking && (
        <ConfirmDialog
          title={`Revoke “${revoking.name}”?`}
          confirmLabel="Revoke key"
          onCancel={() => setRevoking(null)}
          onConfirm={async () => {
            const revoked = (await request(REVOKE_KEY, { id: revoking.id })).revokeKey;
            setRevoking(null);
            replace(revoked);
            setStatus(`“${revoked.name}” is revoked.`);
          }}
        >
          <p>
            Every app using <code>{revoking.displayPrefix}…{revoking.displaySuffix}</code> is refused from now on. A revoked key cannot be restored.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}

function CreateKeyForm({ onCreated }: { onCreated: (key: string, apiKey: ApiKey) => void }) {
  const name = useField();
  const models = useField();
  const { busy, error, submit } = useAction(refusal);
  return (
    <form
      class="panel"
      aria-labelledby="create-key-title"
      onSubmit={submit(async () => {
        const { createKey } = await request(CREATE_KEY, { name: name.value.trim(), allowedModels: parseModelList(models.value) });
        onCreated(createKey.key, createKey.apiKey);
      })}
    >
      <h2 id="create-key-title">Create a key</h2>
      <label>
        Key name
        <input type="text" name="name" required maxLength={64} value={name.value} onInput={name.onInput} />
      </label>
      <label>
        Allowed models (optional)
        <textarea name="allowedModels" rows={2} aria-describedby="create-key-models-hint" value={models.value} onInput={models.onInput} />
      </label>
      <p id="create-key-models-hint" class="hint">
        Model ids, separated by commas or new lines. Leave empty to allow every model.
      </p>
      <SubmitRow busy={busy} error={error} label="Create key" busyLabel="Creating…" />
    </form>
  );
}

/** The full key, this once: with a copy button and a warning that it cannot be shown again. */
function NewKey({ created, onDone }: { created: { key: string; name: string }; onDone: () => void }) {
  const [copied, setCopied] = useState<string | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.key);
      setCopied("Copied to the clipboard.");
    } catch {
      // Without clipboard access (plain http on another host, say) the key is selected for Ctrl+C.
      const field = document.getElementById("new-key-value") as HTMLInputElement | null;
      field?.select();
      setCopied("Selected: press Ctrl+C (⌘C) to copy it.");
    }
  };
  return (
    <section class="panel new-key" aria-labelledby="new-key-title">
      <h2 id="new-key-title">Your new key “{created.name}”</h2>
      <p class="warning">
        <strong>Copy this key now.</strong> It is shown only this once: the platform keeps only a hash of it and cannot show it again. If you lose it,
        revoke it and create another.
      </p>
      <label>
        New API key
        <input id="new-key-value" type="text" readOnly value={created.key} spellcheck={false} onFocus={(e) => e.currentTarget.select()} />
      </label>
      <div class="actions">
        <button type="button" class="primary" onClick={() => void copy()}>
          Copy key
        </button>
        <button type="button" onClick={onDone}>
          I have saved it
        </button>
      </div>
      {copied && <Status>{copied}</Status>}
    </section>
  );
}

/** A form in a row of the table: its fields, then Save and Cancel. */
function RowForm({ saveLabel, save, onCancel, children }: { saveLabel: string; save: () => Promise<void>; onCancel: () => void; children: ComponentChildren }) {
  const { busy, error, submit } = useAction();
  return (
    <form class="inline-form" onSubmit={submit(save)}>
      {children}
      <ErrorText error={error} />
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          {saveLabel}
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function RenameForm({ apiKey, onDone }: { apiKey: ApiKey; onDone: (renamed: ApiKey | null) => void }) {
  const name = useField(apiKey.name);
  return (
    <RowForm
      saveLabel="Save name"
      save={async () => onDone((await request(RENAME_KEY, { id: apiKey.id, name: name.value.trim() })).renameKey)}
      onCancel={() => onDone(null)}
    >
      <label>
        New name for {apiKey.name}
        <input type="text" required maxLength={64} value={name.value} onInput={name.onInput} autofocus />
      </label>
    </RowForm>
  );
}

function ModelsForm({ apiKey, onDone }: { apiKey: ApiKey; onDone: (updated: ApiKey | null) => void }) {
  const models = useField(modelsText(apiKey.allowedModels));
  return (
    <RowForm
      saveLabel="Save models"
      save={async () => onDone((await request(SET_ALLOWED_MODELS, { id: apiKey.id, allowedModels: parseModelList(models.value) })).setKeyAllowedModels)}
      onCancel={() => onDone(null)}
    >
      <label>
        Allowed models for {apiKey.name}
        <textarea rows={2} value={models.value} onInput={models.onInput} autofocus />
      </label>
      <p class="hint">Separated by commas or new lines; empty allows every model.</p>
    </RowForm>
  );
}
