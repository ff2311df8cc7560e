"""CLI commands for the pipeline stage (registered on stockpipe.cli.app.app)."""
