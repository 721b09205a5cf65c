"""LightEval's own command line, offline: `python tests/lighteval_offline.py accelerate ...` runs
`lighteval accelerate ...`.

LightEval 0.13 imports every bundled task module at start-up, whatever task is asked for, and two of them reach the
network when imported (tiny_benchmarks downloads a pickle; mt_bench asks the Hub for its judge model), which fails
offline. Only the bundled tasks are left unregistered: the --custom-tasks file, the pipeline, the model, the metrics
and the details files are LightEval's."""

import sys

from lighteval.tasks.registry import Registry

Registry._load_from_files = staticmethod(lambda files, module_prefix: {})
Registry._load_from_subdirs = staticmethod(lambda subdirs: {})

from lighteval.__main__ import app  # noqa: E402

sys.argv[0] = "lighteval"
app()
