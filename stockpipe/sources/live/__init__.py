"""Live market data: provider websockets (Finnhub, Alpaca), the ``Trade`` record and trades -> bars.

Modules: ``trades`` (the raw trade record that travels on the ``stock-trades`` topic),
``conditions`` (per-provider sale-condition rules), ``aggregate`` (the pure event-time
aggregator), ``dedupe`` (repeats after a reconnect), ``feed`` (the shared websocket client),
``finnhub`` and ``alpaca`` (thin protocol adapters).
"""
