"""Design spaces: a generator, its free parameters with their distributions, fixed settings and
constraints, loaded from YAML (``spaces/NAME.yaml``; the format is in ``spaces/README.md``).

A :class:`Space` draws parameter values with a numpy Generator (vectorized, for rejection
sampling) or asks an Optuna trial for them (define-by-run: a family's own parameters are asked
only when that family is chosen), turns values into a :class:`Network` deterministically, and
samples feasible networks under :class:`Constraints`. One job per module: ``distributions``,
``constraints``, ``space`` (with the rejection sampler), ``costs`` (the cached exact count it
uses) and ``load``.
"""

from nas.spaces.constraints import Constraints, constraints_for
from nas.spaces.costs import cached_complexity
from nas.spaces.distributions import Choice, Float, Int, Param, Pow2
from nas.spaces.load import SPACES_DIR, available, load_space, parse_space, space_path
from nas.spaces.space import Infeasible, Sample, Space

__all__ = ["SPACES_DIR", "Choice", "Constraints", "Float", "Infeasible", "Int", "Param", "Pow2",
           "Sample", "Space", "available", "cached_complexity", "constraints_for", "load_space",
           "parse_space", "space_path"]
