"""Imported first by every recipe, before TensorFlow: when a recipe runs as a script, its
TensorFlow C++ log lines are quiet, as the `tfzoo` command sets them, unless
TF_CPP_MIN_LOG_LEVEL is set or the recipe is given `--verbose` (taken out of its
arguments). A recipe imported as a module (by another recipe or a test) changes nothing."""

import sys
from pathlib import Path

from tfzoo.cli import quiet_tensorflow

_script = getattr(sys.modules["__main__"], "__file__", None)
if _script is not None and Path(_script).resolve().parent == Path(__file__).resolve().parent:
    sys.argv[1:] = quiet_tensorflow(sys.argv[1:])
