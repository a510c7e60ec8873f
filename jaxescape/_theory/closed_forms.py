r"""Closed-form escape-time predictions of the source papers (NumPy/SciPy, no JAX).

Conventions (docs/THEORY.md §1): SDE $d\theta = -\nabla L\,dt + \sqrt{2D(\theta)}\,dW$, time unit
$t = \eta k$ (divide a time by η for SGD iterations; multiply a rate by η for a rate per
iteration); absorption *beyond* the saddle, where Kramers' 2π prefactor applies (absorbing exactly
at the barrier top halves τ, §1.5). Every formula here is a low-noise asymptote: it needs an
exponent $\int L'/D \gtrsim 5$–10 (§7.4). For exact 1-D numbers use `mfpt_quadrature` /
`exact_mfpt` with the model's own D(θ) (§1.4). Docstring tags are docs/THEORY.md §0's: for [R]
formulas trust exponents and slopes, not prefactors.

The constant-noise Kramers and Eyring–Kramers laws live in `quadrature.py` and are reused here.
"""

import math
from collections.abc import Callable

import numpy as np
from scipy import integrate

from .quadrature import eyring_kramers_time, kramers_time


ArrayFunction = Callable[[np.ndarray], np.ndarray]


def _positive(name: str, value) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)) or not np.all(array > 0):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return array


def _finite(name: str, value) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return array


def _scalar_or_array(array: np.ndarray):
    return float(array) if np.ndim(array) == 0 else array


def _exp(log_value):
    with np.errstate(over="ignore"):
        return _scalar_or_array(np.exp(np.asarray(log_value, dtype=np.float64)))


# --------------------------------------------------------------------------------------------
# General 1-D Laplace form (docs/THEORY.md §1.4)


def laplace_exponent(
    loss_gradient: ArrayFunction,
    diffusion_coefficient: ArrayFunction,
    minimum: float,
    saddle: float,
    num_points: int = 200_001,
) -> float:
    r"""The escape exponent $\Phi = \int_{\theta_a}^{\theta_b} L'(u)/D(u)\,du$ (§1.4, [D]).

    Composite Simpson rule on `num_points` uniform points (vectorised `loss_gradient` L' and
    `diffusion_coefficient` D > 0). `saddle` may lie on either side of `minimum`; the result is
    the (positive) barrier exponent either way.
    """
    minimum, saddle = float(minimum), float(saddle)
    if minimum == saddle:
        raise ValueError("minimum and saddle must differ")
    grid = np.linspace(minimum, saddle, num_points | 1)
    gradient = np.asarray(loss_gradient(grid), dtype=np.float64)
    diffusion = np.asarray(diffusion_coefficient(grid), dtype=np.float64)
    if not np.all(np.isfinite(gradient)) or not np.all(diffusion > 0) or not np.all(
        np.isfinite(diffusion)
    ):
        raise ValueError("loss_gradient must be finite and diffusion_coefficient positive")
    return float(integrate.simpson(gradient / diffusion, x=grid))


def _curvature(loss_gradient: ArrayFunction, point: float, scale: float) -> float:
    step = 1e-4 * scale
    values = np.asarray(loss_gradient(np.array([point - step, point + step])), np.float64)
    return float((values[1] - values[0]) / (2 * step))


def laplace_log_escape_time(
    loss_gradient: ArrayFunction,
    diffusion_coefficient: ArrayFunction,
    minimum: float,
    saddle: float,
    curvature_minimum: float | None = None,
    curvature_saddle: float | None = None,
    num_points: int = 200_001,
) -> float:
    r"""log of the low-noise 1-D escape time for any state-dependent D(θ) (§1.4, [D, V-num]).

    $$\tau \simeq 2\pi\sqrt{\frac{D(\theta_b)}{D(\theta_a)\,L''(\theta_a)\,|L''(\theta_b)|}}
    \exp\Big(\int_{\theta_a}^{\theta_b}\frac{L'(u)}{D(u)}du\Big),$$

    absorption beyond the barrier top $\theta_b$. Constant D gives Kramers (§1.5); $D = \eta H/(2B)$
    Xie's SGD exponent (§2.5); $D = \frac\eta2(\sigma + 2\kappa\Delta L)$ Meng (§4.4);
    $D = \eta h^* L/B$ Mori's eq. (16) (§3.4). It is the Laplace approximation of the exact
    double integral: the ratio exact/Laplace tends to 1 as the exponent grows (e.g. 1.03–1.1 at
    exponents 12–5 for a quartic well, §1.5). Curvatures default to central differences of
    `loss_gradient` (step 1e-4·|θ_b − θ_a|).
    """
    exponent = laplace_exponent(loss_gradient, diffusion_coefficient, minimum, saddle, num_points)
    scale = abs(float(saddle) - float(minimum))
    if curvature_minimum is None:
        curvature_minimum = _curvature(loss_gradient, float(minimum), scale)
    if curvature_saddle is None:
        curvature_saddle = _curvature(loss_gradient, float(saddle), scale)
    curvature_minimum = float(_positive("curvature_minimum", curvature_minimum))
    curvature_saddle = float(_positive("|curvature_saddle|", abs(float(curvature_saddle))))
    diffusions = np.asarray(diffusion_coefficient(np.array([float(minimum), float(saddle)])))
    return (
        math.log(2 * math.pi)
        + 0.5 * math.log(diffusions[1] / diffusions[0])
        - 0.5 * math.log(curvature_minimum * curvature_saddle)
        + exponent
    )


def laplace_escape_time(
    loss_gradient: ArrayFunction,
    diffusion_coefficient: ArrayFunction,
    minimum: float,
    saddle: float,
    curvature_minimum: float | None = None,
    curvature_saddle: float | None = None,
    num_points: int = 200_001,
) -> float:
    """The low-noise 1-D escape time; exp of `laplace_log_escape_time` (inf beyond float range)."""
    return _exp(
        laplace_log_escape_time(
            loss_gradient, diffusion_coefficient, minimum, saddle, curvature_minimum,
            curvature_saddle, num_points,
        )
    )


# --------------------------------------------------------------------------------------------
# Xie, Sato, Sugiyama (ICLR 2021), docs/THEORY.md §2


def xie_white_noise_escape_time(barrier, hessian_minimum, hessian_saddle, diffusion):
    r"""Escape time of GD with injected white noise D (Xie §2.4 [R] = Kramers / Eyring–Kramers).

    1-D (scalar curvatures $H_a$, $|H_b|$): $\tau = \frac{2\pi}{\sqrt{H_a|H_b|}}e^{\Delta L/D}$
    (§1.5, [V-num]). Matrices: $\tau = \frac{2\pi}{|H_{be}|}\sqrt{\frac{|\det H_b|}{\det H_a}}
    e^{\Delta L/D}$ (§1.6). Sharpness enters only the prefactor: $\tau \propto H_a^{-1/2}$ at fixed
    $H_b$ — and $\tau \propto 1/k$ when every Hessian scales with k (then $|H_b| \propto k$ too).
    """
    if np.ndim(hessian_minimum) == 2:
        return eyring_kramers_time(hessian_minimum, hessian_saddle, float(barrier), diffusion)
    return kramers_time(barrier, hessian_minimum, np.abs(hessian_saddle), diffusion)


def piecewise_quadratic_path_fraction(curvature_minimum, curvature_saddle):
    r"""Xie's path parameter of a $C^1$ piecewise-quadratic valley, $s = |H_b|/(H_a + |H_b|)$.

    docs/THEORY.md §2.5 [D].

    With $D = \eta H_{\rm loc}/(2B)$ piecewise, the exact exponent is
    $\frac{2B\Delta L}{\eta}(\frac{s}{H_a} + \frac{1-s}{|H_b|})$ with this s.
    """
    minimum = _positive("curvature_minimum", curvature_minimum)
    saddle = _positive("|curvature_saddle|", np.abs(curvature_saddle))
    return _scalar_or_array(saddle / (minimum + saddle))


def xie_sgd_exponent(
    barrier, curvature_minimum, curvature_saddle, learning_rate, batch_size, path_fraction=1.0
):
    r"""Xie's SGD escape exponent $\frac{2B\Delta L}{\eta}(\frac{s}{H_{ae}}+\frac{1-s}{|H_{be}|})$.

    docs/THEORY.md §2.5: exponent [R], consistent with §1.4 [D]. `path_fraction` s ∈ [0, 1] is the
    fraction of the barrier climbed with minimum-like diffusion $\eta H_{ae}/(2B)$. s = 1 (default)
    is the constant-Hessian model $D = \frac{\eta}{2B}H^*$ (exponent exactly $2B\Delta L/(\eta
    H_{ae})$, the headline $\log\tau = O(2B\Delta L/(\eta H_{ae}))$); see
    `piecewise_quadratic_path_fraction` for the local-Hessian model on a piecewise-quadratic valley.
    Linear in B, in 1/η, in ΔL and (s = 1) in $1/H_{ae}$.
    """
    barrier = _finite("barrier", barrier)
    minimum = _positive("curvature_minimum", curvature_minimum)
    saddle = _positive("|curvature_saddle|", np.abs(curvature_saddle))
    learning_rate = _positive("learning_rate", learning_rate)
    batch_size = _positive("batch_size", batch_size)
    fraction = np.asarray(path_fraction, dtype=np.float64)
    if np.any((fraction < 0) | (fraction > 1)):
        raise ValueError(f"path_fraction must lie in [0, 1], got {path_fraction!r}")
    inverse_curvature = fraction / minimum + (1 - fraction) / saddle
    value = 2 * batch_size * barrier / learning_rate * inverse_curvature
    return _scalar_or_array(value)


def xie_sgd_escape_time(
    barrier,
    curvature_minimum,
    curvature_saddle,
    learning_rate,
    batch_size,
    path_fraction=1.0,
    prefactor: str = "ito",
):
    r"""Xie's SGD escape time $\tau = P\,\exp[\text{xie\_sgd\_exponent}]$ (§2.5).

    `prefactor="xie"`: $P = 2\pi/|H_{be}|$, the paper's recalled form [R] (flux-over-population
    without the 1/D factor of the Itô density). `prefactor="ito"` (default): the §1.4 Laplace
    prefactor of the Itô SDE, $2\pi\sqrt{D_b/(D_aH_a|H_b|)}$, which is $2\pi/H_a$ for the local
    model ($D \propto |H|$; [D, V-num]: the exact MFPT over it was 1.01–1.15) and
    $2\pi/\sqrt{H_a|H_b|}$ for the constant model (s = 1, $D_b = D_a$). The two forms agree only
    when $H_a = |H_b|$.
    """
    exponent = np.asarray(
        xie_sgd_exponent(
            barrier, curvature_minimum, curvature_saddle, learning_rate, batch_size, path_fraction
        )
    )
    minimum = np.asarray(curvature_minimum, np.float64)
    saddle = np.abs(np.asarray(curvature_saddle, np.float64))
    fraction = np.asarray(path_fraction, np.float64)
    if prefactor == "xie":
        log_prefactor = np.log(2 * np.pi / saddle)
    elif prefactor == "ito":
        # D_b/D_a = 1 for the constant-Hessian model (s = 1), |H_b|/H_a for the local one.
        log_ratio = np.where(fraction == 1.0, 0.0, np.log(saddle / minimum))
        log_prefactor = np.log(2 * np.pi) + 0.5 * log_ratio - 0.5 * np.log(minimum * saddle)
    else:
        raise ValueError(f"prefactor must be 'ito' or 'xie', got {prefactor!r}")
    return _exp(log_prefactor + exponent)


# --------------------------------------------------------------------------------------------
# Mori, Ziyin, Liu, Ueda (ICML 2022), docs/THEORY.md §3 (ICLR-2022 submission numbering)


def mori_stationary_exponent(learning_rate, batch_size, flatness):
    r"""Mori eq. (18) [V-text]: $P_{\rm ss} \propto L^{-\phi}$, $\phi = 1 + \frac{B}{\eta h^*}$.

    Exact for the Itô SDE (13) with isotropic $H^* = h^*I$ (the 1/D factor of the Itô density
    gives the +1, §1.3). For n outlier directions the loss ratio $w = 1 - L^*/L$ is then
    Beta(n/2, φ − n/2) distributed (change of variables, [D]).
    """
    learning_rate = _positive("learning_rate", learning_rate)
    batch_size = _positive("batch_size", batch_size)
    flatness = _positive("flatness", flatness)
    return _scalar_or_array(1 + batch_size / (learning_rate * flatness))


def mori_passage_exponent(learning_rate, batch_size, flatness, effective_dimension):
    r"""Mori's power-law exponent, $\kappa^{-1} \propto (L^s/L^*)^{B/(\eta h^*)+1-n/2}$ (eq. 17).

    [V-text]. Also the predicted log-log slope of the time for the loss to exceed $cL^*$ against
    c (Mori Fig. 3b, §3.5); n = `effective_dimension`. Positive only for $n < n_c = 2(B/(\eta
    h^*) + 1)$ (eq. 19).
    """
    phi = np.asarray(mori_stationary_exponent(learning_rate, batch_size, flatness))
    dimension = _positive("effective_dimension", effective_dimension)
    return _scalar_or_array(phi - dimension / 2)


def mori_escape_rate(
    loss_minimum, loss_saddle, curvature_minimum, curvature_saddle, learning_rate, batch_size
):
    r"""Mori eq. (16) [V-text, V-num], 1-D escape rate per unit t = ηk:

    $$\kappa = \frac{\sqrt{h^*|h^s|}}{2\pi}\Big[\frac{L(\theta^s)}{L(\theta^*)}\Big]^{-(\frac12 +
    \frac{B}{\eta h^*})}.$$

    Low-noise asymptote for $D = \eta h^* L/B$, absorption beyond the saddle (the exact MFPT
    times κ was 0.95–0.98: docs/THEORY.md §3.4). Identical to `meng_escape_time` with
    $\sigma = 2h^*L^*/B$, $\kappa_{\rm Meng} = h^*/B$ (§4.4). Multiply by η for a rate per
    iteration.
    """
    loss_minimum = _positive("loss_minimum", loss_minimum)
    loss_saddle = _positive("loss_saddle", loss_saddle)
    minimum = _positive("curvature_minimum", curvature_minimum)
    saddle = _positive("|curvature_saddle|", np.abs(curvature_saddle))
    exponent = 0.5 + _positive("batch_size", batch_size) / (
        _positive("learning_rate", learning_rate) * minimum
    )
    log_rate = 0.5 * np.log(minimum * saddle) - np.log(2 * np.pi) - exponent * np.log(
        loss_saddle / loss_minimum
    )
    return _exp(log_rate)


def mori_escape_rate_multidim(
    hessian_minimum, hessian_saddle, loss_minimum, loss_saddle, learning_rate, batch_size,
    flatness=None,
):
    r"""Mori eq. (17) [V-text], escape rate per unit t through an index-1 saddle in n dimensions:

    $$\kappa = \frac{|h^s_e|}{2\pi}\sqrt{\frac{\det\hat H(\theta^*)}{|\det\hat H(\theta^s)|}}
    \Big[\frac{L(\theta^s)}{L(\theta^*)}\Big]^{-(\frac{B}{\eta h^*} + 1 - \frac n2)}.$$

    The Hessians are n × n (restricted to the outlier subspace; n = their size). $h^s_e < 0$ is
    the saddle's negative eigenvalue. `flatness` h* defaults to the minimum's curvature along the
    saddle's unstable eigenvector (App. C: straight escape path). Derived from Eyring–Kramers on
    log L with isotropic noise $T = \eta h^*/B$ (eqs. 20–23); for n = 1 it is eq. (16).
    """
    hessian_minimum = np.atleast_2d(np.asarray(hessian_minimum, np.float64))
    hessian_saddle = np.atleast_2d(np.asarray(hessian_saddle, np.float64))
    if hessian_minimum.shape != hessian_saddle.shape or hessian_minimum.ndim != 2:
        raise ValueError("hessian_minimum and hessian_saddle must be square matrices of one shape")
    minimum_eigenvalues = np.linalg.eigvalsh(hessian_minimum)
    saddle_eigenvalues, saddle_vectors = np.linalg.eigh(hessian_saddle)
    if not np.all(minimum_eigenvalues > 0):
        raise ValueError(f"hessian_minimum must be positive definite, got {minimum_eigenvalues}")
    if np.sum(saddle_eigenvalues < 0) != 1 or np.any(saddle_eigenvalues == 0):
        raise ValueError(f"hessian_saddle must have index 1, eigenvalues {saddle_eigenvalues}")
    if flatness is None:
        direction = saddle_vectors[:, 0]
        flatness = float(direction @ hessian_minimum @ direction)
    dimension = hessian_minimum.shape[0]
    exponent = float(mori_passage_exponent(learning_rate, batch_size, flatness, dimension))
    ratio = float(_positive("loss_saddle", loss_saddle)) / float(
        _positive("loss_minimum", loss_minimum)
    )
    log_rate = (
        np.log(abs(saddle_eigenvalues[0])) - np.log(2 * np.pi)
        + 0.5 * (np.sum(np.log(minimum_eigenvalues)) - np.sum(np.log(np.abs(saddle_eigenvalues))))
        - exponent * np.log(ratio)
    )
    return _exp(log_rate)


def mori_loss_threshold_time(
    threshold_ratio, dimension, flatness, loss_minimum, learning_rate, batch_size,
    num_points: int = 100_001,
) -> float:
    r"""Exact mean time for Mori's SDE to first reach $L = cL^*$ on an isotropic quadratic loss.

    $L(\theta) = L^* + \frac{h}{2}|\theta - \theta^*|^2$ in `dimension` n, $D = \frac{\eta h}{B}L$
    (eq. 13 with $H^* = hI$), started at $\theta^*$; c = `threshold_ratio` > 1. [D]: the radius
    $r = |\theta - \theta^*|$ is the 1-D Itô diffusion $dr = (-hr + (n-1)D/r)\,dt + \sqrt{2D}dW$,
    whose scale density is $\psi(r) = r^{n-1}(L/L^*)^{-\beta}$, β = B/(ηh); the §1.4 integral
    with reflection at r = 0 gives
    $T = \int_0^R \frac{dy}{\psi(y)}\int_0^y\frac{\psi(z)}{D(z)}dz$, $R = \sqrt{2(c-1)L^*/h}$.
    Computed by nested trapezoid sums with Richardson extrapolation. This is the exact reference
    for Mori's Fig. 3b ("no barrier"), whose large-c slope is `mori_passage_exponent`.
    """
    ratio = float(threshold_ratio)
    if not ratio > 1:
        raise ValueError(f"threshold_ratio must exceed 1, got {threshold_ratio}")
    dimension = float(_positive("dimension", dimension))
    flatness = float(_positive("flatness", flatness))
    loss_minimum = float(_positive("loss_minimum", loss_minimum))
    beta = float(_positive("batch_size", batch_size)) / (
        float(_positive("learning_rate", learning_rate)) * flatness
    )
    radius = math.sqrt(2 * (ratio - 1) * loss_minimum / flatness)
    diffusion_scale = float(learning_rate) * flatness / float(batch_size)

    def nested(count):
        grid = np.linspace(0.0, radius, count)
        log_loss_ratio = np.log1p(0.5 * flatness * grid**2 / loss_minimum)
        diffusion = diffusion_scale * loss_minimum * np.exp(log_loss_ratio)
        log_radius = np.log(grid[1:])
        inner_integrand = np.empty_like(grid)
        inner_integrand[0] = 1 / diffusion[0] if dimension == 1 else 0.0
        inner_integrand[1:] = np.exp(
            (dimension - 1) * log_radius - beta * log_loss_ratio[1:]
        ) / diffusion[1:]
        inner = integrate.cumulative_trapezoid(inner_integrand, grid, initial=0.0)
        outer_integrand = np.zeros_like(grid)
        outer_integrand[1:] = np.exp(
            (1 - dimension) * log_radius + beta * log_loss_ratio[1:]
        ) * inner[1:]
        return float(integrate.trapezoid(outer_integrand, grid))

    count = (num_points // 2) * 2 + 1
    fine, coarse = nested(count), nested(count // 2 + 1)
    return (4 * fine - coarse) / 3


# --------------------------------------------------------------------------------------------
# Meng, Gong, Chen, Ma, Liu (arXiv 2006.13719), docs/THEORY.md §4


def meng_log_escape_time(
    barrier, curvature_minimum, curvature_saddle, learning_rate, sigma, kappa,
    hessian_aligned: bool = False,
):
    r"""log of Meng's power-law escape time (§4.4 [D, V-num]; parameterisation [R]).

    For $D(\theta) = \frac\eta2(\sigma + 2\kappa[L(\theta) - L^*])$ the §1.4 Laplace form gives
    $$\tau \simeq \frac{2\pi}{\sqrt{h_a|h_b|}}
    \Big(1 + \frac{2\kappa\Delta L}{\sigma}\Big)^{\frac1{\eta\kappa} + \frac12},$$
    polynomial in ΔL; κ → 0 is Kramers with $D = \eta\sigma/2$, $e^{2\Delta L/(\eta\sigma)}$
    (handled exactly at κ = 0). `hessian_aligned=True` ($D = \frac\eta2 h(\sigma + 2\kappa\Delta
    L)$, Meng's κ ∝ h form) replaces σ, κ by $\sigma h_a$, $\kappa h_a$, so the exponent
    $1/(\eta\kappa h_a)$ makes $\log\tau \propto 1/h_a$. Needs the exponent ≳ 5.
    """
    barrier = _finite("barrier", barrier)
    minimum = _positive("curvature_minimum", curvature_minimum)
    saddle = _positive("|curvature_saddle|", np.abs(curvature_saddle))
    learning_rate = _positive("learning_rate", learning_rate)
    sigma = _positive("sigma", sigma)
    kappa = np.asarray(kappa, np.float64)
    if not np.all(np.isfinite(kappa)) or np.any(kappa < 0):
        raise ValueError(f"kappa must be finite and >= 0, got {kappa!r}")
    if hessian_aligned:
        sigma, kappa = sigma * minimum, kappa * minimum
    growth = 2 * kappa * barrier / sigma
    safe_kappa = np.where(kappa > 0, kappa, 1.0)
    exponent = np.where(
        kappa > 0,
        np.log1p(growth) / (learning_rate * safe_kappa),
        2 * barrier / (learning_rate * sigma),
    )
    log_prefactor = np.log(2 * np.pi) - 0.5 * np.log(minimum * saddle) + 0.5 * np.log1p(growth)
    return _scalar_or_array(log_prefactor + exponent)


def meng_escape_time(
    barrier, curvature_minimum, curvature_saddle, learning_rate, sigma, kappa,
    hessian_aligned: bool = False,
):
    """Meng's power-law escape time; exp of `meng_log_escape_time` (inf beyond float range)."""
    return _exp(
        meng_log_escape_time(
            barrier, curvature_minimum, curvature_saddle, learning_rate, sigma, kappa,
            hessian_aligned,
        )
    )


def meng_power_law_slope(learning_rate, kappa, curvature_minimum=1.0, hessian_aligned=False):
    r"""Slope of log τ against $\log(1 + 2\kappa\Delta L/\sigma)$: $\frac1{\eta\kappa} + \frac12$.

    docs/THEORY.md §4.4 [D]; with `hessian_aligned`, κ is multiplied by the minimum's curvature.
    """
    kappa = _positive("kappa", kappa)
    if hessian_aligned:
        kappa = kappa * _positive("curvature_minimum", curvature_minimum)
    return _scalar_or_array(1 / (_positive("learning_rate", learning_rate) * kappa) + 0.5)


def meng_stationary_exponent(learning_rate, kappa):
    r"""Tail exponent of Meng's stationary law (§4.3 [D]):

    $P_{\rm ss}(w) \propto (1 + \frac{\kappa h}{\sigma}(w - w^*)^2)^{-(1 + \frac{1}{\eta\kappa})}$,
    i.e. $P \propto C(w)^{-(1 + 1/(\eta\kappa))}$ (a Student-t / Pearson VII law).
    """
    return _scalar_or_array(1 + 1 / (_positive("learning_rate", learning_rate) * _positive(
        "kappa", kappa
    )))
