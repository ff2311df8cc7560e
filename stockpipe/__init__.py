"""stockpipe: an end-to-end streaming pipeline for stock-market data."""

__version__ = "0.1.0"
