"""The reproduction of arXiv 2511.21626 as a client of the kag core.

Everything paper-specific lives here: the run sizes (:mod:`~kag.repro.profiles`), the metric
tables of a profile and their scheduler (:mod:`~kag.repro.results`), the pure decision rules
(:mod:`~kag.repro.rules`), the claim registry (:mod:`~kag.repro.claims`) and the report
(:mod:`~kag.repro.report`). The core (``kag.experiments.data``, ``kag.experiments.model``, ``kag.experiments.train``, ``kag.experiments.store``,
``kag.jacobians``, ``kag.determinants``, ``kag.metrics``, ``kag.spatial``, ``kag.experiments.analysis``, ...) never
imports this package; the pytest layer in ``claims/`` only iterates over its registry.
"""
