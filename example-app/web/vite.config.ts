import { defineConfig } from 'vite'
import { fileURLToPath } from 'node:url'

// Fixed file names (no content hashes): the service worker precaches
// them by name, and the server answers them with Cache-Control: no-cache,
// so a new build is fetched whenever the browser is online.
export default defineConfig({
  resolve: {
    alias: { '@ferrysync/client': fileURLToPath(new URL('../../clients/js/src/index.ts', import.meta.url)) },
  },
  build: {
    outDir: process.env.FERRY_WEB_OUT_DIR || 'dist',
    emptyOutDir: true,
    target: 'es2022',
    rollupOptions: {
      output: { entryFileNames: 'assets/app.js', chunkFileNames: 'assets/[name].js', assetFileNames: 'assets/app[extname]' },
    },
  },
})
