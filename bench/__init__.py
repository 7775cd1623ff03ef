"""The benchmarks of the deployment engine (``python bench/run.py`` or ``python -m bench.run``).

:mod:`bench.run` is the command: it picks the metrics, runs their phases on throw-away
stacks and prints one table. Each metric module's docstring defines its rows; the stacks
and worker processes come from :mod:`harness`, shared with the tests.
:mod:`bench.crash_matrix` is a command of its own.
"""
