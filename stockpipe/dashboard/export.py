"""``stockpipe export``: the gold star schema (facts, dimensions, marts) as Parquet or CSV files.

One file per table, ``<out>/<table>.<format>``, streamed batch by batch from the warehouse
(Arrow types preserved in Parquet), each written to a temporary name and renamed when
complete. For Power BI, Tableau, Excel or any tool that reads Parquet/CSV (docs/powerbi.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from stockpipe.dashboard.queries import GOLD_TABLES
from stockpipe.dashboard.readers import open_reader
from stockpipe.dashboard.warehouse import WarehouseEmptyError, WarehouseReader
from stockpipe.errors import StockpipeError
from stockpipe.fsutil import atomic_write
from stockpipe.settings import Settings

if TYPE_CHECKING:
    import pyarrow as pa

ExportFormat = Literal["parquet", "csv"]
FORMATS: tuple[str, ...] = ("parquet", "csv")
STAR_PREFIXES = ("fact_", "dim_", "mart_")


def star_tables(names: set[str]) -> list[str]:
    """The gold tables to export: the contract's plus any other fact_/dim_/mart_ table (pure)."""
    return sorted(n for n in names if n in GOLD_TABLES or n.startswith(STAR_PREFIXES))


def write_stream(reader: pa.RecordBatchReader, path: Path, fmt: ExportFormat) -> int:
    """Write an Arrow stream to ``path`` atomically; return the number of rows."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    rows = 0
    writer: pq.ParquetWriter | pcsv.CSVWriter
    with atomic_write(path) as fh:
        if fmt == "parquet":
            writer = pq.ParquetWriter(fh, reader.schema, compression="zstd")
        else:
            writer = pcsv.CSVWriter(fh, reader.schema)
        try:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
        finally:
            writer.close()
    return rows


def export_tables(reader: WarehouseReader, out_dir: Path, fmt: ExportFormat) -> dict[str, int]:
    """Export every star-schema table the reader sees; return rows per table."""
    if fmt not in FORMATS:
        raise StockpipeError(f"Export format {fmt!r} is not supported: use parquet or csv.")
    names = star_tables(reader.tables("gold"))
    if not names:
        raise WarehouseEmptyError(
            f"The warehouse at {reader.location} has no gold tables yet: run `stockpipe run` first."
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        name: write_stream(reader.arrow_reader("gold", name), out_dir / f"{name}.{fmt}", fmt)
        for name in names
    }


def export_gold(settings: Settings, out_dir: Path, fmt: ExportFormat) -> dict[str, int]:
    """Write every gold table of the configured warehouse to ``out_dir`` as ``fmt`` files.

    Example: ``export_gold(get_settings(), Path("export"), "parquet")``
    """
    with open_reader(settings) as reader:
        return export_tables(reader, out_dir, fmt)
