"""Width formulas of the strong-lottery-ticket theorems, as pure vectorised functions.

Every function takes plain numbers or numpy arrays (broadcast against each other),
checks its domain, and returns numbers of the same broadcast shape (a Python
``int``/``float`` for scalar inputs). Constants that the papers leave
unspecified are explicit keyword arguments ``C``; the defaults are the values
slth's own measurements support (see "Measured constants" below).

Measured constants
------------------
``LUEKER_C = 3.8``
    Smallest C (rounded up) such that n = ceil(C ln(2/eps)) i.i.d. U[-1, 1]
    values cover *every* z in [-1, 1] within eps with probability >= 1 - eps,
    measured exactly with :func:`slth.subset_sum.coverage_batch` (1000 seeded
    trials per eps): eps = 2^-3..2^-8 need n = 10, 13, 15, 17, 20, 22, i.e.
    n / ln(2/eps) between 3.50 and 3.75 (``benchmarks/construct_mlp.py
    --measure-c``; ``tests/test_bounds.py`` re-checks it).
``PENSIA2020_C = 9.0``
    Smallest C (grid step 0.5) such that the construction of
    :func:`slth.constructions.pensia2020.construct` in eps mode, at the width
    :func:`pensia2020_units` gives, met every per-weight tolerance
    eps / (2 l d_in d_out) in at least 1 - delta of 30 seeded trials, for random
    targets with U[-1, 1] entries scaled to spectral norm 1 (widths (2, 2) to
    (16, 16), (4, 8, 4), (8, 8, 8), (4, 4, 4, 4); eps in {0.1, 0.02};
    delta = 0.1). The needed C was 6.0-7.5 except 8.5 for the 2 x 2 target (a
    few instances with |W_ij| near 1, which products of uniforms reach only
    with many terms); 9.0 covers all of them. It is measured on random
    targets: the theorem's "for every target" guarantee needs every instance to
    cover all of [-1, 1], which costs more units (``tests/test_pensia2020.py``
    checks the default statistically).
``MALACH2020_C = 14.0`` (and ``SINGLE_PAIR_C``, the same value)
    The proof constant of :func:`malach2020_units` (no measurement needed: the
    union bound there is rigorous for |W_ij| <= 1/2).

References
----------
Lueker, G. S. (1998). Exponentially small bounds on the expected optimum of the
partition and subset sum problems. Random Structures & Algorithms 12(1).

Pensia, A., Rajput, S., Nagle, A., Vishwakarma, H., Papailiopoulos, D. (2020).
Optimal lottery tickets via SubsetSum: logarithmic over-parameterization is
sufficient. NeurIPS 2020 (arXiv:2006.07990). Theorem 1 (upper bound) and
Theorem 2 (lower bound).

Malach, E., Yehudai, G., Shalev-Shwartz, S., Shamir, O. (2020). Proving the
lottery ticket hypothesis: pruning is all you need. ICML 2020 (arXiv:2002.00585).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _validate

__all__ = [
    "LUEKER_C",
    "MALACH2020_C",
    "OTSUKA2025_C",
    "PENSIA2020_C",
    "SINGLE_PAIR_C",
    "lueker_n",
    "malach2020_units",
    "malach2020_width",
    "otsuka2025_block_widths",
    "otsuka2025_widths",
    "pensia2020_lower_bound",
    "pensia2020_tolerance",
    "pensia2020_units",
    "pensia2020_width",
    "single_pair_units",
    "single_pair_width",
]

#: Lueker's constant as measured by slth (see module docstring).
LUEKER_C = 3.8
#: Constant of Pensia et al. (2020) Theorem 1 as measured for slth's construction.
PENSIA2020_C = 9.0
#: Constant of Otsuka et al. (2025) Theorem 3 as measured for slth's construction (module doc).
OTSUKA2025_C = 6.0
#: Proof constant of the single-pair width (Malach et al.'s selection): 4 / ln(4/3), rounded up.
MALACH2020_C = 14.0
#: The same constant for the shared-layout variant :mod:`slth.constructions.single_pair`.
SINGLE_PAIR_C = 14.0


# ----------------------------------------------------------------------------- checks
# the shared validators of slth._validate, under this module's names
def _real(name: str, value: Any) -> np.ndarray:
    return _validate.real_array(name, value)


def _open_unit(name: str, value: Any, high: float = 1.0) -> np.ndarray:
    return _validate.open_interval_array(name, value, 0.0, high)


def _positive_int(name: str, value: Any) -> np.ndarray:
    return _validate.integer_array(name, value, low=1)


def _positive(name: str, value: Any) -> float:
    return _validate.positive(name, value, convert=True)  # type: ignore[return-value]


def _out(arr: np.ndarray, integer: bool) -> Any:
    if integer:
        arr = arr.astype(np.int64)
        return int(arr) if arr.ndim == 0 else arr
    return float(arr) if arr.ndim == 0 else arr


# ----------------------------------------------------------------------------- Lueker
def lueker_n(eps: Any, *, C: float = LUEKER_C) -> Any:
    """Number of random values Lueker's theorem asks for: ``n = ceil(C ln(2 / eps))``.

    Lueker (1998): if X_1..X_n are i.i.d. with a density containing a uniform
    component (e.g. U[-1, 1]) and n >= C ln(2/eps), then with probability at
    least 1 - eps every z in [-1, 1] is within eps of some subset sum. The
    theorem does not give C numerically.

    Parameters
    ----------
    eps : float or array_like
        Accuracy, in (0, 1).
    C : float, default :data:`LUEKER_C`
        The constant; positive and finite. :data:`LUEKER_C` = 3.8 is what
        slth measures for U[-1, 1] values (module docstring).

    Returns
    -------
    int or numpy.ndarray of int64
        ``ceil(C ln(2 / eps))``, with the broadcast shape of ``eps``.

    Examples
    --------
    >>> lueker_n(0.01, C=3.8)
    21
    """
    e = _open_unit("eps", eps)
    c = _positive("C", C)
    return _out(np.ceil(c * np.log(2.0 / e) - 1e-9), integer=True)


# ----------------------------------------------------------------------------- Pensia
def pensia2020_tolerance(d_in: Any, d_out: Any, depth: Any, eps: Any) -> Any:
    """Per-weight tolerance of Pensia et al. (2020), Theorem 1: ``eps / (2 l d_in d_out)``.

    If every realised effective weight of every target layer is within this
    tolerance (for both sign parts), the layer errors Delta_l satisfy
    ``||Delta_l||_2 <= ||Delta_l||_F <= eps / (2 l sqrt(d_in d_out)) <= eps / (2 l)``
    and the error propagation of :func:`slth.evaluate.certified_bound` gives a
    sup error at most ``(1 + eps/(2l))^l - 1 <= e^{eps/2} - 1 < eps`` on the unit
    ball when every ``||W_l||_2 <= 1``.

    Parameters
    ----------
    d_in, d_out : int or array_like
        Input and output width of the target layer, >= 1.
    depth : int or array_like
        Number of target layers l, >= 1.
    eps : float or array_like
        Overall accuracy, in (0, 1).

    Returns
    -------
    float or numpy.ndarray
    """
    a = _positive_int("d_in", d_in)
    b = _positive_int("d_out", d_out)
    l = _positive_int("depth", depth)
    e = _open_unit("eps", eps)
    return _out(e / (2.0 * l * a * b), integer=False)


def pensia2020_units(d_in: Any, d_out: Any, depth: Any, eps: Any, delta: Any, *,
                     C: float = PENSIA2020_C) -> Any:
    """Hidden units per input coordinate and sign part, ``n``, of Pensia et al. (2020), Thm 1.

    Theorem 1 gives target layer i (``d_in -> d_out``) a source hidden layer of
    ``m = C d_in log(d_in d_out l / min(eps, delta))`` units (natural log).
    slth's construction splits them into ``d_in`` blocks of ``2 n`` units (one
    block per input coordinate, the first ``n`` serving the positive part
    ``relu(x_j)``, the last ``n`` the negative part ``relu(-x_j)``), so

    ``n = ceil((C / 2) ln(d_in d_out l / min(eps, delta)))``  and  ``m = 2 n d_in``.

    Parameters
    ----------
    d_in, d_out : int or array_like
        Target layer widths, >= 1.
    depth : int or array_like
        Target depth l, >= 1.
    eps, delta : float or array_like
        Accuracy and failure probability, each in (0, 1).
    C : float, default :data:`PENSIA2020_C`
        The theorem's constant (not given numerically in the paper). The
        default is the value slth's measurements support (module docstring).

    Returns
    -------
    int or numpy.ndarray of int64
        ``n >= 1``.
    """
    a = _positive_int("d_in", d_in)
    b = _positive_int("d_out", d_out)
    l = _positive_int("depth", depth)
    e = _open_unit("eps", eps)
    dl = _open_unit("delta", delta)
    c = _positive("C", C)
    arg = a * b * l / np.minimum(e, dl)
    n = np.ceil(0.5 * c * np.log(arg) - 1e-9)
    return _out(np.maximum(n, 1.0), integer=True)


def pensia2020_width(d_in: Any, d_out: Any, depth: Any, eps: Any, delta: Any, *,
                     C: float = PENSIA2020_C) -> Any:
    """Source hidden width ``m = 2 n d_in`` for one target layer, Pensia et al. (2020), Thm 1.

    Theorem 1 (Pensia, Rajput, Nagle, Vishwakarma, Papailiopoulos, NeurIPS 2020):
    a target ``f(x) = W_l relu(... relu(W_1 x))`` with every ``||W_i||_2 <= 1``
    is eps-approximated on the unit ball, with probability >= 1 - delta
    simultaneously for every such f, by pruning a random network of depth 2l
    with i.i.d. U[-1, 1] weights whose hidden layer i has
    ``C d_{i-1} log(d_{i-1} d_i l / min(eps, delta))`` units. This function
    returns that width rounded up to the block layout of slth's construction,
    ``2 d_in`` times :func:`pensia2020_units`.

    Parameters
    ----------
    d_in, d_out : int or array_like
        Target layer widths ``d_{i-1}``, ``d_i``, >= 1.
    depth : int or array_like
        Target depth l, >= 1.
    eps, delta : float or array_like
        In (0, 1).
    C : float, default :data:`PENSIA2020_C`
        The theorem's constant.

    Returns
    -------
    int or numpy.ndarray of int64
        Hidden width m (a multiple of ``2 d_in``).

    Examples
    --------
    >>> pensia2020_width(784, 500, 2, 0.01, 0.01, C=6.0) // (2 * 784)
    55
    """
    n = np.asarray(pensia2020_units(d_in, d_out, depth, eps, delta, C=C))
    a = _positive_int("d_in", d_in)
    return _out(2 * n * a, integer=True)


def pensia2020_lower_bound(d: Any, eps: Any) -> Any:
    """Parameter lower bound of Pensia et al. (2020), Theorem 2: ``d^2 log2(1/(2 eps)) - 1``.

    Any network (of any architecture) whose subnetworks approximate, each with
    probability >= 1/2, every linear map ``x -> W x`` with ``W`` in R^{d x d},
    ``||W||_2 <= 1``, to within eps on the unit ball must have at least this
    many parameters. Against it, the Theorem 1 source for one such layer holds
    about ``2 C d^2 log(d / eps)`` weights: optimal up to the log(d) factor.

    Parameters
    ----------
    d : int or array_like
        Dimension, >= 1.
    eps : float or array_like
        Accuracy in (0, 1/2) (the bound is vacuous past 1/2).

    Returns
    -------
    float or numpy.ndarray
        The bound (may be fractional; a parameter count is its ceiling).

    Examples
    --------
    >>> pensia2020_lower_bound(10, 0.125)
    199.0
    """
    dd = _positive_int("d", d)
    e = _open_unit("eps", eps, high=0.5)
    return _out(dd * dd * np.log2(1.0 / (2.0 * e)) - 1.0, integer=False)


# ----------------------------------------------------------------------------- Malach
def malach2020_units(d_in: Any, d_out: Any, depth: Any, eps: Any, delta: Any, *,
                     C: float = MALACH2020_C) -> Any:
    """Candidates per sign part of one target weight, ``k``, for single-pair selection.

    Malach, Yehudai, Shalev-Shwartz, Shamir (ICML 2020, Theorem 2.1) approximate
    each target weight by ONE random pair (first-layer weight a, second-layer
    weight b) with ``b a`` close to it, which needs polynomially many candidates
    (their theorem states a width polynomial in d, l, 1/eps and log(1/delta);
    Pensia et al. summarise it as a factor ``O(d^4 l^2)`` over the target
    width). The constants of Malach et al.'s own proof are not used here (the
    paper's appendix could not be read for this implementation); ``k`` comes
    from the following union bound, rigorous for targets with
    ``|W_ij| <= 1/2`` and valid for both layouts that select single pairs
    (:mod:`slth.constructions.malach2020`, one block of ``2k`` units per target
    weight, and :mod:`slth.constructions.single_pair`, one block per input
    coordinate shared by the outputs):

    * per-weight tolerance ``t = eps / (2 l d_in d_out)`` (as for Pensia);
    * each of the first k units of a block has ``a > 0`` with probability 1/2,
      and every such unit is a candidate of the positive part (the part takes
      the first k positive units of the block); given ``a > 0``, ``b a`` has
      density ``(1/2) ln(1/|z|) >= (1/2) ln(4/3)`` on ``|z| <= 3/4``, so each of
      these k units yields a candidate within t of a target ``|w| <= 1/2``
      independently with probability ``p >= t ln(4/3) / 2`` (same for the
      negative part);
    * all ``2 l d_in d_out`` instances succeed with probability >= 1 - delta once
      ``(1 - p)^k <= delta / (2 l d_in d_out)``, i.e. once
      ``k >= (4 / ln(4/3)) (l d_in d_out / eps) ln(2 l d_in d_out / delta)``.

    Hence ``k = ceil(C (l d_in d_out / eps) ln(2 l d_in d_out / delta))`` with
    the proof constant ``C = 4 / ln(4/3) = 13.9`` (default 14).

    Parameters
    ----------
    d_in, d_out : int or array_like
        Target layer widths, >= 1.
    depth : int or array_like
        Target depth l, >= 1.
    eps, delta : float or array_like
        In (0, 1).
    C : float, default :data:`MALACH2020_C`

    Returns
    -------
    int or numpy.ndarray of int64
    """
    a = _positive_int("d_in", d_in)
    b = _positive_int("d_out", d_out)
    l = _positive_int("depth", depth)
    e = _open_unit("eps", eps)
    dl = _open_unit("delta", delta)
    c = _positive("C", C)
    k = np.ceil(c * (l * a * b / e) * np.log(2.0 * l * a * b / dl) - 1e-9)
    return _out(np.maximum(k, 1.0), integer=True)


def malach2020_width(d_in: Any, d_out: Any, depth: Any, eps: Any, delta: Any, *,
                     C: float = MALACH2020_C) -> Any:
    """Source hidden width ``2 k d_in d_out`` of Malach et al.'s layout (one block per weight).

    Every target weight ``W_ij`` owns a block of ``2k`` hidden units (read from
    input j only, read by output i only), ``k`` from :func:`malach2020_units`:
    polynomial in ``d`` and ``1/eps`` and ``d_out`` times the width of the
    shared layout (:func:`single_pair_width`), against the logarithmic
    :func:`pensia2020_width`.

    Parameters
    ----------
    d_in, d_out, depth, eps, delta, C
        As in :func:`malach2020_units`.

    Returns
    -------
    int or numpy.ndarray of int64
    """
    k = np.asarray(malach2020_units(d_in, d_out, depth, eps, delta, C=C))
    a = _positive_int("d_in", d_in)
    b = _positive_int("d_out", d_out)
    return _out(2 * k * a * b, integer=True)


def single_pair_units(d_in: Any, d_out: Any, depth: Any, eps: Any, delta: Any, *,
                      C: float = SINGLE_PAIR_C) -> Any:
    """Candidates per part of :mod:`slth.constructions.single_pair`: :func:`malach2020_units`.

    Parameters
    ----------
    d_in, d_out, depth, eps, delta, C
        As in :func:`malach2020_units`.

    Returns
    -------
    int or numpy.ndarray of int64
    """
    return malach2020_units(d_in, d_out, depth, eps, delta, C=C)


def single_pair_width(d_in: Any, d_out: Any, depth: Any, eps: Any, delta: Any, *,
                      C: float = SINGLE_PAIR_C) -> Any:
    """Source hidden width ``2 k d_in`` of the shared-layout single-pair variant.

    Parameters
    ----------
    d_in, d_out, depth, eps, delta, C
        As in :func:`malach2020_units`.

    Returns
    -------
    int or numpy.ndarray of int64
    """
    k = np.asarray(single_pair_units(d_in, d_out, depth, eps, delta, C=C))
    a = _positive_int("d_in", d_in)
    return _out(2 * k * a, integer=True)


def otsuka2025_widths(d1: Any, d2: Any, H: Any, alpha: Any, eps: Any, *,
                      C: float = OTSUKA2025_C) -> tuple[Any, Any]:
    """Source widths per head ``(n_K, n_V)`` of Otsuka et al. (2025), Theorem 3.

    ``n_K = ceil(d1 C ln(8 H alpha^3 d1^(3/2) / eps))`` and
    ``n_V = ceil(d1 C ln(2 H alpha d1 sqrt(d2) / eps))`` (natural log; the
    arguments are the inverses of the per-entry tolerances of
    :func:`slth.constructions.otsuka2025.tolerances`, re-derived there because
    the extracted paper text drops square roots), each at least ``d1`` so
    that every input coordinate has a block of ``n // d1 >= 1`` units.

    Parameters
    ----------
    d1, d2 : int or array_like
        Input and output widths of the attention, >= 1.
    H : int or array_like
        Number of heads, >= 1.
    alpha : float or array_like
        Bound on the per-token input norms, > 0 (the theorem takes
        ``alpha >= max(sqrt d1, sqrt d2)``).
    eps : float or array_like
        Accuracy (and failure probability), in (0, 1).
    C : float, default :data:`OTSUKA2025_C`
        The theorem's constant (not given numerically in the paper).

    Returns
    -------
    (int, int) or (numpy.ndarray, numpy.ndarray)
    """
    a = _positive_int("d1", d1)
    b = _positive_int("d2", d2)
    h = _positive_int("H", H)
    al = _real("alpha", alpha)
    if not np.all(al > 0):
        _validate.fail("alpha", "a finite number > 0", alpha)
    e = _open_unit("eps", eps)
    c = _positive("C", C)
    n_k = _log_width(a, c, 8.0 * h * al ** 3 * a ** 1.5 / e, a)
    n_v = _log_width(a, c, 2.0 * h * al * a * np.sqrt(b) / e, a)
    return _out(n_k, integer=True), _out(n_v, integer=True)


def _log_width(d1: np.ndarray, c: float, arg: np.ndarray, low: Any) -> np.ndarray:
    """``max(ceil(d1 C ln(arg)), low)`` (``arg`` below 1 counts as 1): Otsuka et al.'s form."""
    return np.maximum(np.ceil(d1 * c * np.log(np.maximum(arg, 1.0)) - 1e-9), low)


def otsuka2025_block_widths(d1: Any, H: Any, L: Any, alpha: Any, eps: Any, *,
                            C: float = OTSUKA2025_C) -> tuple[Any, Any]:
    """Source widths ``(n_MHA, n_FC)`` of one transformer block, Otsuka et al. (2025).

    The block theorem (target ``Blk(x) = F(A + x) + A + x`` of width d1 with an
    L-layer ReLU F): ``n_MHA = ceil(d1 C ln(32 alpha^3 H d1^(3/2) / eps))`` per
    head (the attention's widths of :func:`otsuka2025_widths` at ``eps / 4``,
    as slth's eps split gives the attention a quarter) and ``n_FC = ceil(d1 C
    ln(24 alpha L H d1^(5/2) / eps))`` hidden units per F layer of the source
    (Pensia et al.'s layout: ``n_FC / (2 d1)`` units per sign part and input
    coordinate). The extracted paper text drops square roots; the powers of
    d1 are read as printed.

    Parameters
    ----------
    d1 : int or array_like
        Token width, >= 1.
    H : int or array_like
        Heads, >= 1.
    L : int or array_like
        Layers of the target F, >= 1.
    alpha : float or array_like
        Per-token input norm bound, > 0.
    eps : float or array_like
        Accuracy, in (0, 1).
    C : float, default :data:`OTSUKA2025_C`

    Returns
    -------
    (int, int) or (numpy.ndarray, numpy.ndarray)
    """
    a = _positive_int("d1", d1)
    h = _positive_int("H", H)
    depth = _positive_int("L", L)
    al = _real("alpha", alpha)
    if not np.all(al > 0):
        _validate.fail("alpha", "a finite number > 0", alpha)
    e = _open_unit("eps", eps)
    c = _positive("C", C)
    # the attention's share of the block: Theorem 3's query/key width at eps / 4 (8 x 4 = 32)
    n_mha = _log_width(a, c, 32.0 * h * al ** 3 * a ** 1.5 / e, a)
    n_fc = _log_width(a, c, 24.0 * al * depth * h * a ** 2.5 / e, 2 * a)
    return _out(n_mha, integer=True), _out(n_fc, integer=True)
