"""Gold: the dbt runner (``runner``) and the dbt sources generated from the contract (``sources``)."""
