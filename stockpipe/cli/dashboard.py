"""CLI commands for the dashboard stage (registered on stockpipe.cli.app.app)."""
