"""The one tolerance table of the test suite (float policy in DESIGN.md).

Import as ``from tolerances import TOL`` (pytest puts tests/ on sys.path).
"""

import numpy as np

#: Absolute tolerance for comparing results computed in a dtype against a float64 reference
#: of values of order 1.
TOL: dict[np.dtype, float] = {
    np.dtype(np.float64): 1e-12,
    np.dtype(np.float32): 1e-5,
}
