"""Applications above the core: benchmark, comparison, demo, export."""
