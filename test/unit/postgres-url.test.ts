import { describe, expect, it } from "vitest";
import { connectionOf } from "../../src/infra/db.js";

describe("DATABASE_URL naming a Unix socket, as libpq does", () => {
  it("takes the socket directory from ?host= and leaves the rest of the URL as it was", () => {
    expect(connectionOf("postgres://sentx@/sentx?host=%2Fvar%2Frun%2Fpostgresql")).toEqual({
      url: "postgres://sentx@localhost/sentx",
      host: "/var/run/postgresql",
    });
    expect(connectionOf("postgresql://u:p@/db?sslmode=disable&host=/tmp&application_name=api")).toEqual({
      url: "postgresql://u:p@localhost/db?sslmode=disable&application_name=api",
      host: "/tmp",
    });
    expect(connectionOf("postgres://u@localhost:6543/db?host=/run/pg")).toEqual({ url: "postgres://u@localhost:6543/db", host: "/run/pg" });
  });

  it("leaves a TCP URL alone", () => {
    expect(connectionOf("postgres://u@db.internal:5432/db")).toEqual({ url: "postgres://u@db.internal:5432/db" });
    expect(connectionOf("postgres://u@h/db?host=other")).toEqual({ url: "postgres://u@h/db?host=other" });
  });
});
