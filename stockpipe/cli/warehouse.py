"""CLI commands for the warehouse stage (registered on stockpipe.cli.app.app)."""
