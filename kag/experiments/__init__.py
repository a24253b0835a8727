"""The experiments layer: datasets, model families, training, the content-addressed store and its keys,
and the metric tables measured on stored models.

It stands on the math in :mod:`kag` (Jacobians, minors, observables, spatial pools, surrogate) and
never imports the reproduction (:mod:`kag.repro`), which is its client. A dataset is one module in
:mod:`kag.experiments.datasets`, a model family one module in :mod:`kag.experiments.families`; each
package finds its modules itself.
"""
