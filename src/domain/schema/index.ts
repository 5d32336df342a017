export * from "./accounts.js";
export * from "./api-keys.js";
export * from "./ledger.js";
export * from "./identity.js";
export * from "./requests.js";
export * from "./sessions.js";
export * from "./files.js";
export * from "./audit.js";
