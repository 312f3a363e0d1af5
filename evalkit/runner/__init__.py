"""The run: entry points (`api`), the scheduler, its options, budget, limiter, cache, journal,
manifest, the sample row, progress, cost estimates and rescoring."""
