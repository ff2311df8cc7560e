"""CLI commands for the ingest stage (registered on stockpipe.cli.app.app)."""
