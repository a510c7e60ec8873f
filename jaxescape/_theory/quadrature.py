"""Reference escape times: exact 1-D first-passage quadrature, Kramers and Eyring–Kramers laws."""

import math
from collections.abc import Callable

import numpy as np
from scipy.special import logsumexp


ArrayFunction = Callable[[np.ndarray], np.ndarray | float]

_MINIMUM_POINTS = 101
_MINIMUM_POINTS_PER_PIECE = 51


def _check_finite_number(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return value


def _odd_at_least(count: float, minimum: int) -> int:
    count = max(int(round(count)), minimum)
    return count if count % 2 == 1 else count + 1


def _evaluate(function: ArrayFunction, grid: np.ndarray, name: str) -> np.ndarray:
    values = np.broadcast_to(np.asarray(function(grid), dtype=np.float64), grid.shape)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must return finite values on the grid between the boundaries")
    return values


def _log_mfpt_trapezoid(
    grid: np.ndarray, drift: np.ndarray, diffusion: np.ndarray, start_index: int
) -> float:
    """Nested trapezoid rule for log T, all intermediate quantities kept as logarithms."""
    steps = np.diff(grid)
    ratio = drift / diffusion
    log_psi = np.concatenate(([0.0], np.cumsum(0.5 * steps * (ratio[:-1] + ratio[1:]))))
    log_inner_integrand = log_psi - np.log(diffusion)
    increments = np.log(0.5 * steps) + np.logaddexp(
        log_inner_integrand[:-1], log_inner_integrand[1:]
    )
    log_inner = np.concatenate(([-np.inf], np.logaddexp.accumulate(increments)))
    outer_steps = steps[start_index:]
    weights = np.zeros(outer_steps.size + 1)
    weights[:-1] += 0.5 * outer_steps
    weights[1:] += 0.5 * outer_steps
    log_outer = (log_inner - log_psi)[start_index:]
    return float(logsumexp(log_outer + np.log(weights)))


def log_mfpt_quadrature(
    drift: ArrayFunction,
    diffusion_coefficient: ArrayFunction,
    start: float,
    reflecting: float,
    absorbing: float,
    num_points: int = 200_001,
) -> float:
    """Natural log of the exact 1-D mean first-passage time (docs/THEORY.md §1.4, Gardiner §5.2.7).

    For the Itô SDE ``dx = A(x) dt + sqrt(2 D(x)) dW`` with a reflecting boundary at ``a`` and an
    absorbing boundary at ``b``::

        T(x0) = ∫_{x0}^{b} dy / ψ(y) ∫_a^y ψ(z) / D(z) dz,   ψ(x) = exp(∫_a^x A(u) / D(u) du).

    ``a`` may lie below or above ``b``; the second case is mapped to the first by ``x -> -x``
    (``A -> -A(-x)``, ``D -> D(-x)``). Everything is computed in log space (cumulative
    log-sum-exp for the inner integral, ``logsumexp`` for the outer one), so factors such as
    ``exp(ΔU / D) = 1e300`` and results with ``log T > 709`` are handled. The grid is uniform on
    ``[a, x0]`` and on ``[x0, b]`` (about ``num_points`` points in all, split by length); the
    nested trapezoid rule is applied on it and on every second point, and the two are combined by
    Richardson extrapolation (error ``O(h^4)``).

    **Arguments:**

    - `drift`: Vectorised `A(x)`; takes and returns float64 arrays.
    - `diffusion_coefficient`: Vectorised `D(x) > 0` (noise `sqrt(2 D)`).
    - `start`: Starting point `x0`, between `reflecting` and `absorbing` (inclusive).
    - `reflecting`: Position `a` of the reflecting boundary.
    - `absorbing`: Position `b` of the absorbing boundary.
    - `num_points`: Approximate number of grid points, at least 101.

    **Returns:**

    `log T(x0)`; `-inf` when `start == absorbing`.

    **Raises:**

    - `ValueError`: On invalid boundaries, start, grid size, or non-positive diffusion.
    """
    start = _check_finite_number("start", start)
    reflecting = _check_finite_number("reflecting", reflecting)
    absorbing = _check_finite_number("absorbing", absorbing)
    if isinstance(num_points, bool) or int(num_points) != num_points:
        raise ValueError(f"num_points must be an integer >= {_MINIMUM_POINTS}, got {num_points!r}")
    num_points = int(num_points)
    if num_points < _MINIMUM_POINTS:
        raise ValueError(f"num_points must be an integer >= {_MINIMUM_POINTS}, got {num_points}")
    if reflecting == absorbing:
        raise ValueError(f"reflecting must differ from absorbing, both are {reflecting}")
    lower, upper = min(reflecting, absorbing), max(reflecting, absorbing)
    if not lower <= start <= upper:
        raise ValueError(
            f"start must lie between reflecting={reflecting} and absorbing={absorbing}, got {start}"
        )
    if start == absorbing:
        return -math.inf
    if reflecting > absorbing:  # mirror x -> -x so that the reflecting boundary is on the left
        original_drift, original_diffusion = drift, diffusion_coefficient

        def drift(x: np.ndarray) -> np.ndarray:
            return -np.asarray(original_drift(-x), dtype=np.float64)

        def diffusion_coefficient(x: np.ndarray) -> np.ndarray:
            return original_diffusion(-x)

        start, reflecting, absorbing = -start, -reflecting, -absorbing

    length = absorbing - reflecting
    outer_count = _odd_at_least((num_points - 1) * (absorbing - start) / length + 1,
                                _MINIMUM_POINTS_PER_PIECE)
    pieces = [np.linspace(start, absorbing, outer_count)]
    if start > reflecting:
        inner_count = _odd_at_least((num_points - 1) * (start - reflecting) / length + 1,
                                    _MINIMUM_POINTS_PER_PIECE)
        pieces.insert(0, np.linspace(reflecting, start, inner_count)[:-1])
    grid = np.concatenate(pieces)
    start_index = grid.size - outer_count

    drift_values = _evaluate(drift, grid, "drift")
    diffusion_values = _evaluate(diffusion_coefficient, grid, "diffusion_coefficient")
    if not np.all(diffusion_values > 0.0):
        raise ValueError("diffusion_coefficient must be positive and finite on the grid")

    fine = _log_mfpt_trapezoid(grid, drift_values, diffusion_values, start_index)
    coarse = _log_mfpt_trapezoid(
        grid[::2], drift_values[::2], diffusion_values[::2], start_index // 2
    )
    ratio = math.exp(coarse - fine)  # T_2h / T_h, close to 1 on a resolving grid
    if not 0.0 < ratio < 4.0 or abs(ratio - 1.0) > 0.5:
        raise ValueError(
            f"num_points={num_points} does not resolve the integrand "
            f"(coarse/fine ratio {ratio:.3g}); increase num_points"
        )
    return fine + math.log((4.0 - ratio) / 3.0)  # Richardson: T = (4 T_h - T_2h) / 3


def mfpt_quadrature(
    drift: ArrayFunction,
    diffusion_coefficient: ArrayFunction,
    start: float,
    reflecting: float,
    absorbing: float,
    num_points: int = 200_001,
) -> float:
    """Exact 1-D mean first-passage time ``T(x0)``; ``exp`` of :func:`log_mfpt_quadrature`.

    Same arguments and formula (docs/THEORY.md §1.4). Returns ``inf`` when ``T`` overflows.
    """
    log_time = log_mfpt_quadrature(
        drift, diffusion_coefficient, start, reflecting, absorbing, num_points
    )
    with np.errstate(over="ignore"):
        return float(np.exp(log_time))


def _positive_array(name: str, value: np.ndarray | float) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)) or not np.all(array > 0.0):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return array


def kramers_time(
    barrier: np.ndarray | float,
    curvature_minimum: np.ndarray | float,
    curvature_saddle: np.ndarray | float,
    temperature: np.ndarray | float,
    absorption: str = "beyond_saddle",
) -> np.ndarray | float:
    """Overdamped Kramers mean escape time (docs/THEORY.md §1.5; Hänggi–Talkner–Borkovec 1990).

    For ``dx = -U'(x) dt + sqrt(2 T) dW`` in the low-temperature limit::

        τ = 2π / sqrt(U''(x_a) |U''(x_b)|) · exp(ΔU / T).

    Conventions: ``"beyond_saddle"`` is the time to reach a point well past the barrier top
    ``x_b`` (e.g. the next minimum); ``"at_saddle"`` is the time to first *touch* ``x_b``, which is
    half as long, because a particle at the top is equally likely to fall back or go over.

    **Arguments:**

    - `barrier`: `ΔU = U(x_b) - U(x_a)` (may be any real number; the formula needs `ΔU >> T`).
    - `curvature_minimum`: `U''(x_a) > 0`.
    - `curvature_saddle`: `|U''(x_b)| > 0` (a negative value is replaced by its absolute value).
    - `temperature`: Noise level `T = D > 0`.
    - `absorption`: `"beyond_saddle"` (default) or `"at_saddle"`.

    **Returns:**

    τ, broadcast over the array arguments (a float for scalar input).
    """
    if absorption not in ("beyond_saddle", "at_saddle"):
        raise ValueError(f"absorption must be 'beyond_saddle' or 'at_saddle', got {absorption!r}")
    barrier = np.asarray(barrier, dtype=np.float64)
    if not np.all(np.isfinite(barrier)):
        raise ValueError(f"barrier must be finite, got {barrier!r}")
    minimum = _positive_array("curvature_minimum", curvature_minimum)
    saddle = _positive_array("curvature_saddle", np.abs(np.asarray(curvature_saddle, np.float64)))
    temperature = _positive_array("temperature", temperature)
    log_time = np.log(2.0 * np.pi) - 0.5 * np.log(minimum * saddle) + barrier / temperature
    if absorption == "at_saddle":
        log_time = log_time - np.log(2.0)
    with np.errstate(over="ignore"):
        time = np.exp(log_time)
    return float(time) if time.ndim == 0 else time


def kramers_rate(
    barrier: np.ndarray | float,
    curvature_minimum: np.ndarray | float,
    curvature_saddle: np.ndarray | float,
    temperature: np.ndarray | float,
    absorption: str = "beyond_saddle",
) -> np.ndarray | float:
    """Kramers escape rate ``κ = 1 / τ`` (docs/THEORY.md §1.5); see :func:`kramers_time`."""
    time = kramers_time(barrier, curvature_minimum, curvature_saddle, temperature, absorption)
    return 1.0 / time


def eyring_kramers_time(
    hessian_minimum: np.ndarray,
    hessian_saddle: np.ndarray,
    barrier: float,
    temperature: float,
) -> float:
    """Multi-dimensional Eyring–Kramers mean escape time (docs/THEORY.md §1.6; Berglund 2013).

    For ``dz = -∇U dt + sqrt(2 T) dW`` with isotropic constant ``T``::

        E τ = 2π / |λ_1(H_s)| · sqrt(|det H_s| / det H_m) · exp(ΔU / T),

    where ``H_m`` is the Hessian at the minimum (positive definite), ``H_s`` the Hessian at the
    index-1 saddle and ``λ_1(H_s) < 0`` its single negative eigenvalue. Absorption is beyond the
    saddle (the 1-D reduction is :func:`kramers_time` with ``"beyond_saddle"``). Determinants are
    taken as sums of log-eigenvalues (``eigvalsh``).

    **Arguments:**

    - `hessian_minimum`: Symmetric `(n, n)` Hessian at the minimum.
    - `hessian_saddle`: Symmetric `(n, n)` Hessian at the saddle.
    - `barrier`: `ΔU = U(saddle) - U(minimum)`.
    - `temperature`: Noise level `T > 0`.

    **Returns:**

    E τ as a float (`inf` beyond float range).
    """
    hessian_minimum = np.atleast_2d(np.asarray(hessian_minimum, dtype=np.float64))
    hessian_saddle = np.atleast_2d(np.asarray(hessian_saddle, dtype=np.float64))
    for name, matrix in (("hessian_minimum", hessian_minimum), ("hessian_saddle", hessian_saddle)):
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"{name} must be a square matrix, got shape {matrix.shape}")
        if not np.all(np.isfinite(matrix)):
            raise ValueError(f"{name} must be finite")
    if hessian_minimum.shape != hessian_saddle.shape:
        raise ValueError(
            f"hessian_minimum shape {hessian_minimum.shape} differs from "
            f"hessian_saddle shape {hessian_saddle.shape}"
        )
    barrier = _check_finite_number("barrier", barrier)
    temperature = float(_positive_array("temperature", temperature))
    eigenvalues_minimum = np.linalg.eigvalsh(hessian_minimum)
    eigenvalues_saddle = np.linalg.eigvalsh(hessian_saddle)
    if not np.all(eigenvalues_minimum > 0.0):
        raise ValueError(
            f"hessian_minimum must be positive definite, eigenvalues {eigenvalues_minimum}"
        )
    if np.sum(eigenvalues_saddle < 0.0) != 1 or np.any(eigenvalues_saddle == 0.0):
        raise ValueError(
            "hessian_saddle must have exactly one negative eigenvalue and no zero eigenvalue, "
            f"eigenvalues {eigenvalues_saddle}"
        )
    log_abs_saddle = np.log(np.abs(eigenvalues_saddle))
    log_time = (
        math.log(2.0 * math.pi)
        - log_abs_saddle[0]  # eigvalsh sorts ascending: the negative eigenvalue comes first
        + 0.5 * (np.sum(log_abs_saddle) - np.sum(np.log(eigenvalues_minimum)))
        + barrier / temperature
    )
    with np.errstate(over="ignore"):
        return float(np.exp(log_time))
