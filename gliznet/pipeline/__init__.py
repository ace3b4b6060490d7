"""The jobs without Prefect: generation's entry point (``generate``: generate -> curate) and the weekly job's logic
(content keys, lineage, the release gate and model releases).  The top of the library; flows/ and the CLI call it."""
