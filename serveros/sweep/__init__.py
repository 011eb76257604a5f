"""Trade-off studies at scale (issue 18): ``serveros sweep`` runs every point of a sweep file
as a task on Dask's distributed scheduler and keeps each finished point on disk.

- :mod:`.spec`: the sweep file (TOML): parameters, their values, how to combine them; a bad
  file is refused naming its line.
- :mod:`.plan`: the file's points (full grid, seeded random or Latin-hypercube sample).
- :mod:`.engine`: runs points on a ``LocalCluster`` or an existing scheduler (or in this
  process), storing each under its key (:mod:`.store`, :mod:`.version`).
- :mod:`.tasks`: what a worker runs for a point (the documents' image built there).
- :mod:`.runner`: a sweep file from start to rows; :mod:`.sweepcli`: ``serveros sweep``.
- :mod:`.table`, :mod:`.plotting`, :mod:`.plotcli`, :mod:`.bench`: results tables, plots and
  the sweep benchmark.

Nothing here is imported by the simulation: the engine calls
:func:`serveros.experiments.paper.run_point` for every point, as ``serveros run`` does.
"""
