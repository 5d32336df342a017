// `npm run web:schema`: writes the dashboard API's schema where the web dashboard's typed client reads it.
// Built from src/graphql alone (no database, no server); test/unit/dashboard-schema.test.ts fails when these files drift.
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { minifyIntrospection, outputIntrospectionFile } from "@gql.tada/internal";
import { buildSchema, type GraphQLSchema, introspectionFromSchema, lexicographicSortSchema, printSchema } from "graphql";
import { dashboardTypeDefs } from "../src/graphql/yoga.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

export const WEB_SCHEMA_FILE = join(root, "web", "schema.graphql");
/** gql.tada's types for every query the dashboard writes: the schema as a TypeScript type, read by tsc with no codegen step. */
export const WEB_SCHEMA_TYPES_FILE = join(root, "web", "src", "graphql-env.d.ts");

/** The server's schema, sorted so the files change only when the schema does. */
export function dashboardSchema(): GraphQLSchema {
  // graphql's own builder, not yoga's: yoga may load the other copy (CommonJS or ESM) of graphql, which these printers refuse.
  return lexicographicSortSchema(buildSchema(dashboardTypeDefs.join("\n")));
}

/** The two files' contents, as the server's schema makes them now. */
export function dashboardSchemaFiles(): { sdl: string; types: string } {
  const schema = dashboardSchema();
  const sdl = `# The dashboard API's schema, as the server builds it. Do not edit: run npm run web:schema.\n\n${printSchema(schema)}\n`;
  const types = outputIntrospectionFile(minifyIntrospection(introspectionFromSchema(schema)), { fileType: ".d.ts", shouldPreprocess: true });
  return { sdl, types };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { sdl, types } = dashboardSchemaFiles();
  writeFileSync(WEB_SCHEMA_FILE, sdl);
  writeFileSync(WEB_SCHEMA_TYPES_FILE, types);
  process.stderr.write(`wrote ${WEB_SCHEMA_FILE} and ${WEB_SCHEMA_TYPES_FILE}\n`);
}
