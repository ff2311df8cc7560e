"""The Typer application object every command module registers on."""

import typer

app = typer.Typer(
    name="stockpipe",
    help=(
        "End-to-end stock-market pipeline: Kafka -> bronze -> Spark silver -> warehouse -> dbt gold."
        "\n\nExample:  stockpipe run   (the whole pipeline on the embedded default)"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """stockpipe: produce, land, clean, load, model and report stock-market bars.

    Example:  stockpipe run   (the whole pipeline on the embedded default)
    """
