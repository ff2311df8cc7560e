"""CLI commands for the clean stage (registered on stockpipe.cli.app.app)."""
