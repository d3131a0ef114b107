"""The PWA shell: home, manifest, service worker, offline page, language switch, health check."""
