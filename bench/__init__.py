"""The benchmarks of the deployment engine (``python bench/run.py`` or ``python -m bench.run``).

:mod:`bench.run` is the command: it picks the metrics, runs their phases on throw-away
stacks and prints one table (:mod:`bench.report`). Each metric module's docstring
defines its rows (P1 :mod:`bench.step_overhead`, P2 :mod:`bench.bad_canary`, the others
as bench/run.py lists them); the stacks and worker processes come from :mod:`harness`,
shared with the tests. :mod:`bench.crash_matrix` is a command of its own.
"""
