"""Experiments: configured runs, sweeps and their resumable result store, reports and plots.

`config` (the default experiment's options from the command line or TOML), `kramers` (the
default Kramers validation experiment and run directories), `sweep` (a sweep specification and
its points), `sweep_run` (running a sweep into the store, resumable), `store` (the result store:
atomic writes, one file per point, concurrent writers), `report` (tables and figures rebuilt
from a store), `runs` (listing run directories), `plots` (histograms and survival curves),
`components` (a point's landscape, dynamics or SGD run, criterion and start, by name or import
path), `fits` (declared fits with predicted slopes: a sweep's analysis step), `results` (a store
as a pandas DataFrame and raw arrays).

May import: everything below it (core, `_dynamics`, `_sgd`, `_theory`, `_engine`, `_splitting`).
Only `_reproductions`, `cli` and the package's `__init__` import it. The modules that import
matplotlib are loaded on first use.
"""
