"""The test and benchmark harness: what the tests (tests/) and the benchmarks (bench/) share.

Real stacks and the processes around them, never part of the product:

- :mod:`harness.support`: the repository root, retrying Temporal calls, stopping processes,
  free ports, ``python worker.py`` as a process (:class:`~harness.support.WorkerProcess`);
- :mod:`harness.stack`: the single-region local platform (:class:`~harness.stack.Stack`)
  and the base YAML config the engine's tests deploy from;
- :mod:`harness.dr_stack`: the two-region DR stack (:class:`~harness.dr_stack.DrStack`);
- :mod:`harness.crash_worker` and :mod:`harness.crash_matrix`: the worker with a kill
  switch and the matrix of kill points run against it;
- :mod:`harness.pipeline`, :mod:`harness.judge`: the release pipeline's config on a stack,
  the analysis judge on a scripted source;
- :mod:`harness.cloud`, :mod:`harness.cloud_dr`: moto, kmock and what they do not play
  (controllers, kubelets, RDS promotions), for the cloud providers' tests;
- :mod:`harness.artifact_checks`: the offline checks of the production artifacts.

The pytest fixtures (tests/*/) only wrap these.
"""
