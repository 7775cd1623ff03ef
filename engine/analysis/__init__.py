"""The canary analysis subsystem: how a release's evidence is read, judged and reported.

- ``conditions``: the condition language of threshold metrics (``result < 0.05``), a vetted ast walk;
- ``threshold``: the threshold judge (Argo Rollouts' semantics: conditions, limits, counts);
- ``evidence``: counts from counter series (requests, errors, histogram buckets) per version,
  per interval, robust to counter resets;
- ``sequential``: anytime-valid e-processes (canary worse than baseline; past an SLO);
- ``mann_whitney``: Kayenta's fixed-horizon judge (Mann-Whitney U, Hodges-Lehmann, scoring);
- ``judge``: what one interval of evidence does to a template's state, and its verdict.

The contracts (templates, evidence, verdicts) are in ``engine.contracts.analysis``; the I/O to
each metrics backend is a provider (``activities/analysis/``); what a workflow does with a verdict
is ``workflows/gates.py``. Nothing here is imported by the workflow sandbox except ``conditions``
(through the contracts): numpy and scipy load only in the worker's activities.
"""
