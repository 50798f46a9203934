"""The application shell: settings, the Temporal connection, the worker, the dev server, the CLI."""
