import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, validate } from "graphql";
import { describe, expect, it } from "vitest";
import { dashboardSchema, dashboardSchemaFiles, WEB_SCHEMA_FILE, WEB_SCHEMA_TYPES_FILE } from "../../scripts/web-schema.js";

const WEB_SOURCES = join(import.meta.dirname, "..", "..", "web", "src");

/** Every graphql(`…`) document in the web dashboard's sources, with the file it is in. */
function dashboardDocuments(): { file: string; text: string }[] {
  const files = readdirSync(WEB_SOURCES, { recursive: true, encoding: "utf8" }).filter((file) => /\.tsx?$/.test(file) && !file.endsWith(".d.ts"));
  return files.flatMap((file) =>
    [...readFileSync(join(WEB_SOURCES, file), "utf8").matchAll(/\bgraphql\(\s*`([^`]*)`/g)].map((match) => ({ file, text: match[1]! })),
  );
}

// The web dashboard's client is typed from committed copies of the schema; a server change without
// `npm run web:schema` would leave the dashboard type-checking against an API that no longer exists.
describe("the web dashboard's copy of the dashboard API schema", () => {
  const current = dashboardSchemaFiles();

  it("web/schema.graphql is the server's schema as it is now", () => {
    expect(readFileSync(WEB_SCHEMA_FILE, "utf8"), "run npm run web:schema").toBe(current.sdl);
  });

  it("web/src/graphql-env.d.ts (gql.tada's types) is made from that same schema", () => {
    expect(readFileSync(WEB_SCHEMA_TYPES_FILE, "utf8"), "run npm run web:schema").toBe(current.types);
  });

  it("holds every query and mutation the dashboard pages call", () => {
    for (const field of ["me", "keys", "ledger", "topUps", "usage", "endUsers", "conversations", "files", "csrfToken"]) {
      expect(current.sdl).toMatch(new RegExp(`^  ${field}\\b`, "m"));
    }
    for (const field of ["signUp", "signIn", "signOut", "claimAccount", "createKey", "renameKey", "revokeKey", "setKeyAllowedModels", "createTopUpCheckout", "deleteFile"]) {
      expect(current.sdl).toMatch(new RegExp(`^  ${field}\\(?`, "m"));
    }
  });
});

// gql.tada types what a query selects, but tsc does not reject a field the schema lacks: this does.
describe("the web dashboard's queries", () => {
  const documents = dashboardDocuments();

  it("are found in the sources (one per page action at least)", () => {
    expect(documents.length).toBeGreaterThanOrEqual(15);
  });

  it("are each valid against the server's schema, fragments included", () => {
    // One document, as fragments are defined in one file and spread in others; names are unique across the app.
    const errors = validate(dashboardSchema(), parse(documents.map(({ text }) => text).join("\n")));
    expect(errors.map((error) => error.message)).toEqual([]);
  });

  it("a query naming a field the schema lacks is caught", () => {
    const errors = validate(dashboardSchema(), parse("query Broken { me { id bogusField } }"));
    expect(errors.map((error) => error.message)).toEqual([expect.stringContaining("bogusField")]);
  });
});
