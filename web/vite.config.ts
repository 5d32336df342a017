// The web dashboard's build (npm run web:build) and dev server (npm run web:dev).
import preact from "@preact/preset-vite";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// The dev server sends the dashboard API on to a running platform; its cookie and CSRF check then work as served.
const apiTarget = process.env.SENTX_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  // The platform serves the build at /dashboard (src/rest/dashboard-app.ts).
  base: "/dashboard/",
  plugins: [preact({ prerender: { enabled: false } })],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // Every asset is a file: the dashboard's Content-Security-Policy allows no data: scripts or styles.
    assetsInlineLimit: 0,
  },
  server: { port: 5173, strictPort: false, proxy: { "/graphql": { target: apiTarget, changeOrigin: false } } },
});
