"""The assumption sweep (SPEC §8): the paper's claims re-judged over a grid of assumptions.

:mod:`.grid` reads a committed TOML grid file into a validated :class:`Grid` whose points are
:class:`~kag.repro.profiles.Profile`\\ s; :mod:`.engine` trains and measures every point on Dask
distributed (an embedded ``LocalCluster``, or an existing cluster) and judges each point's claims;
:mod:`.eta` prices its unfinished tasks for the progress line; :mod:`.report` renders the verdict matrix.
``distributed`` is imported by the engine only, so reading a grid needs nothing beyond the core.
"""

from kag.repro.sweep.grid import AUGMENTATIONS, AXES, DEFAULTS, Grid, Point, load_grid, parse_grid

__all__ = ["AUGMENTATIONS", "AXES", "DEFAULTS", "Grid", "Point", "load_grid", "parse_grid"]
