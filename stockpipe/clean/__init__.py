"""Spark cleaning: bronze -> silver (typed, validated, deduplicated) with quarantine.

Modules (pyspark is only imported inside functions, so importing this package stays cheap):

* ``session``   - the Spark session factory (``get_spark``), Java check, lake URIs;
* ``rules``     - the declarative validation rules (name + Column);
* ``transforms`` - pure DataFrame -> DataFrame steps: parse, normalise, validate, split, dedup;
* ``bronze_reader`` - new bronze files from the manifest minus the ledger, one Spark read;
* ``job``       - ``run_clean``: the step with its staging, journal and partition swaps;
* ``commit``, ``state`` - the crash-safe commit, ledger and journal (through ``lake.fs.LakeFS``);
* ``companies`` - the companies CSV -> ``silver/companies``;
* ``submit``    - the ``spark-submit`` application file.
"""
