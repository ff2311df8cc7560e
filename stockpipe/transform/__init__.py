"""Spark cleaning: bronze -> silver (typed, validated, deduplicated) with quarantine."""
