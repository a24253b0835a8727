"""kag: measure Kolmogorov-Arnold geometry (KAG) in neural networks.

Public modules: ``kag.data`` (MNIST), ``kag.model`` (the paper's MLP), ``kag.train`` (batched
multi-seed trainer), ``kag.jacobian``, ``kag.minors``, ``kag.metrics``, ``kag.spatial`` (the
measurements), ``kag.store`` (content-addressed cache) and ``kag.profiles`` (run sizes).
"""

__version__ = "0.1.0"
