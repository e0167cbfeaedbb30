"""Speed benchmarks of idsjax: throughput across batch sizes, the reference comparison, a step profiler.

Run them as modules: `python -m benchmarks.throughput`, `python -m benchmarks.vs_reference`,
`python -m benchmarks.profile_step` (each takes `--help`). Results land in `benchmarks/results/`.
"""
