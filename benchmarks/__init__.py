"""heaplint's benchmark harness (not part of the installed package).

Run it with ``python benchmarks/run.py`` from the project root; see
benchmarks/README.md.  The modules:

* :mod:`benchmarks.stages` -- what is measured: one function per stage,
  (a) decoding ... (e) all rules, each returning comparable outputs;
* :mod:`benchmarks.child` -- runs one stage in a fresh process and prints its
  timings and peak RSS as JSON;
* :mod:`benchmarks.inputs` -- the synthetic inputs, cached in benchmarks/.cache;
* :mod:`benchmarks.measure` -- runs stages in child processes, the ``--jobs`` hook;
* :mod:`benchmarks.report` -- the Markdown tables and docs/performance.md;
* :mod:`benchmarks.run` -- the command line.
"""
