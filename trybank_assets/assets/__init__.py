"""The lake's assets, one module per layer. Kept free of imports: gold's Python workers import
``history_arrays`` from here, and each fresh worker would pay for anything this file pulls in (Dagster: ~1.2 s)."""
