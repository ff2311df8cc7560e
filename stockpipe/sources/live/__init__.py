"""Live market data: sources that run until stopped, feeding the idempotent producer.

Modules: ``base`` (the live-source interface: batches acknowledged after the producer's flush),
``runtime`` (runs a live source into the producer), ``checkpoint`` (per-symbol high-water marks),
``session`` (trading-session windows), ``alphavantage_poll`` (incremental polling), ``registry``;
``trades`` (the raw trade record that travels on the ``stock-trades`` topic), ``conditions``
(per-provider sale-condition rules), ``aggregate`` (the pure event-time aggregator), ``dedupe``
(repeats after a reconnect), ``feed`` (the shared websocket client), ``finnhub`` and ``alpaca``
(thin protocol adapters).
"""
