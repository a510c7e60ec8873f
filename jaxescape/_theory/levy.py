r"""Exact references for escape driven by symmetric α-stable noise (NumPy and SciPy).

The noise is `scipy.stats.levy_stable`'s S1 law with β = 0 and scale 1 (the variates of
`_noise.stable_from_uniforms`): $E\,e^{iuZ} = e^{-|u|^\alpha}$. The driving Lévy process has
$L_t \overset{d}{=} t^{1/\alpha} Z$ and Lévy measure $\nu(dy) = c_\alpha |y|^{-1-\alpha}\,dy$ with
$c_\alpha = \Gamma(1 + \alpha)\sin(\pi\alpha/2)/\pi$ (Samorodnitsky & Taqqu 1994, §1.2; for
α = 1, 1/π: the Cauchy law).

- `levy_chain_mean_exit_time`: the mean exit time of the discretised 1-D chain
  $X_{n+1} = X_n - L'(X_n)\,\Delta t + \varepsilon\,\Delta t^{1/\alpha} Z_n$ itself, from
  $(I - P)T = 1$: what the simulation is tested against at finite ε and Δt.
- `levy_escape_time`: the small-noise law (Imkeller & Pavlyukevich 2006)
  $E\tau \approx 1/(\varepsilon^\alpha \nu(\text{outside}))
  = \alpha / (c_\alpha \varepsilon^\alpha (a^{-\alpha} + b^{-\alpha}))$.
"""

import functools
import math

import numpy as np
from scipy import integrate, interpolate, linalg, optimize, special, stats


def stable_levy_constant(alpha):
    r"""$c_\alpha = \Gamma(1 + \alpha)\sin(\pi\alpha/2)/\pi$: the Lévy measure
    $c_\alpha |y|^{-1-\alpha} dy$ of the standard SαS law $E\,e^{iuZ} = e^{-|u|^\alpha}$
    (Samorodnitsky & Taqqu 1994, §1.2), so that $P(Z > z) \sim c_\alpha z^{-\alpha}/\alpha$.

    **Arguments:** `alpha` in (0, 2) (array-like).

    **Returns:** c_α (0 at α = 2: the Gaussian has no jumps).
    """
    alpha = np.asarray(alpha, np.float64)
    return special.gamma(1 + alpha) * np.sin(np.pi * alpha / 2) / np.pi


def levy_escape_time(alpha, epsilon, lower_distance, upper_distance):
    r"""The small-noise mean exit time from a well driven by ε·(standard SαS Lévy process).

    $$E\tau \approx \frac{1}{\varepsilon^\alpha \nu((-\infty, -a] \cup [b, \infty))}
      = \frac{\alpha}{c_\alpha \varepsilon^\alpha (a^{-\alpha} + b^{-\alpha})}$$

    for exits at distances a (below) and b (above) from the minimum (Imkeller & Pavlyukevich
    2006, Stoch. Proc. Appl. 116, Thm. 1.1): one big jump does it, so the time depends on the
    basin's width and not on the barrier's height, and it grows like ε^−α (a power law, not an
    Arrhenius exponential). The constant is `stable_levy_constant`. The discretised chain
    $X_{n+1} = X_n - L'(X_n)\Delta t + \varepsilon \Delta t^{1/\alpha} Z_n$ has the same limit for
    any fixed stable Δt: from near the minimum one step leaves with probability
    $\approx \Delta t\,\varepsilon^\alpha\nu(\text{outside})$.

    **Arguments:** `alpha` in (0, 2), `epsilon` > 0, `lower_distance` a > 0, `upper_distance`
    b > 0 (array-like, broadcast).

    **Returns:** the mean exit time (in the time of the SDE, i.e. steps·Δt).
    """
    alpha = np.asarray(alpha, np.float64)
    if np.any((alpha <= 0) | (alpha >= 2)):
        raise ValueError(f"alpha must lie in (0, 2) for the jump law, got {alpha}")
    for name, value in (("epsilon", epsilon), ("lower_distance", lower_distance),
                        ("upper_distance", upper_distance)):
        if np.any(~np.isfinite(value) | (np.asarray(value) <= 0)):
            raise ValueError(f"{name} must be positive and finite, got {value}")
    mass = np.power(lower_distance, -alpha) + np.power(upper_distance, -alpha)
    return alpha / (stable_levy_constant(alpha) * np.power(epsilon, alpha) * mass)


def standard_stable_pdf(alpha: float, extent: float):
    """The density of the standard SαS law (S1, β = 0, scale 1) on [−extent, extent], as a
    vectorised callable: scipy's `levy_stable.pdf` on 1200 arcsinh-spaced nodes in
    [0.01, E] (E: extent rounded up to a power of 2, so that tables are shared and cached) and
    the exact f(0) = Γ(1 + 1/α)/π, with log f interpolated by a cubic spline in arcsinh|z|
    (relative error below 1e-9 against scipy at random points up to 10^4; scipy itself
    flattens |z| below about 0.006, where no node lies). α = 2: N(0, 2)."""
    if alpha == 2:
        return stats.norm(scale=np.sqrt(2)).pdf
    return _tabulated_pdf(float(alpha), 2.0 ** math.ceil(math.log2(max(extent, 1.0))))


@functools.lru_cache(maxsize=32)
def _tabulated_pdf(alpha: float, extent: float):
    nodes = np.sinh(np.linspace(np.arcsinh(0.01), np.arcsinh(extent), 1200))
    values = stats.levy_stable.pdf(nodes, alpha, 0.0)
    nodes = np.concatenate([[0.0], nodes])
    values = np.concatenate([[special.gamma(1 + 1 / alpha) / np.pi], values])
    spline = interpolate.CubicSpline(np.arcsinh(nodes), np.log(values))
    return lambda z: np.exp(spline(np.arcsinh(np.abs(z))))


def levy_chain_mean_exit_time(
    gradient, alpha: float, epsilon: float, dt: float, lower: float, upper: float, start,
    points_per_scale: float = 4.0, max_points: int = 8001,
):
    r"""Mean exit time of the discretised 1-D α-stable chain from (lower, upper), exactly.

    The chain $X_{n+1} = m(X_n) + s Z_n$, $m(x) = x - L'(x)\Delta t$, $s = \varepsilon
    \Delta t^{1/\alpha}$, Z standard SαS (`_noise.stable_from_uniforms`), leaves when it lands
    outside the interval (tested on the iterates only, as `LevyParticle` does). Its mean number
    of steps solves $T(x) = 1 + \int_{lower}^{upper} s^{-1} f((y - m(x))/s)\,T(y)\,dy$, i.e.
    $(I - P)T = 1$; it is solved by Nyström's method with Simpson's rule on a grid of spacing
    at most s/`points_per_scale` (T is smooth inside the interval, since the kernel is), and
    T(start) is the Nyström interpolant. The density f is `standard_stable_pdf`.

    **Arguments:**

    - `gradient`: L' as a vectorised NumPy function of x.
    - `alpha` in (0, 2]; `epsilon` > 0; `dt` > 0: the chain's parameters.
    - `lower` < `upper`: the interval; `start`: start point(s) inside it.
    - `points_per_scale`: grid points per noise scale s (4 agrees with 8 to about 1e-5 relative
      in the tests' settings); `max_points`: the largest grid allowed (dense solve).

    **Returns:** the mean exit time in the SDE's time (steps·Δt), the shape of `start`.
    """
    if not 0 < alpha <= 2:
        raise ValueError(f"alpha must lie in (0, 2], got {alpha}")
    for name, value in (("epsilon", epsilon), ("dt", dt)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be positive and finite, got {value}")
    if not lower < upper:
        raise ValueError(f"lower must be below upper, got {lower} and {upper}")
    start = np.asarray(start, np.float64)
    if np.any((start <= lower) | (start >= upper)):
        raise ValueError(f"start must lie inside ({lower}, {upper}), got {start}")
    scale = epsilon * dt ** (1 / alpha)
    intervals = 2 * int(np.ceil(points_per_scale * (upper - lower) / scale / 2))
    if intervals + 1 > max_points:
        raise ValueError(
            f"the grid needs {intervals + 1} points (noise scale {scale:.3g} on an interval of "
            f"{upper - lower}) but max_points is {max_points}: raise max_points or epsilon, dt"
        )
    nodes = np.linspace(lower, upper, intervals + 1)
    weights = np.full(nodes.size, 2.0)
    weights[1::2], weights[[0, -1]] = 4.0, 1.0
    weights *= (nodes[1] - nodes[0]) / 3
    means = nodes - dt * np.asarray(gradient(nodes), np.float64)
    start_means = start.reshape(-1) - dt * np.asarray(gradient(start.reshape(-1)), np.float64)
    extent = (upper - lower + np.max(np.abs(np.concatenate([means, start_means]) - lower))
              ) / scale
    pdf = standard_stable_pdf(alpha, extent)

    def kernel(centres):
        return pdf((nodes[None, :] - centres[:, None]) / scale) / scale * weights[None, :]

    steps = linalg.solve(np.eye(nodes.size) - kernel(means), np.ones(nodes.size))
    at_start = 1 + kernel(start_means) @ steps
    return (dt * at_start).reshape(start.shape)


def kesten_tail_index(learning_rate, batch_size: int) -> float:
    r"""The exact tail index of the stationary law of SGD on 1-D linear regression with standard
    Gaussian inputs and i.i.d. minibatches of size B (Kesten 1973; Goldie 1991; Gürbüzbalaban,
    Şimşekli & Zhu 2021, Thm. 2).

    The iterates $\theta_{k+1} - \theta^* = (1 - \eta h_k)(\theta_k - \theta^*) + \eta q_k$
    with $h_k = \chi^2_B/B$ have $P(|\theta - \theta^*| > x) \sim C x^{-\alpha}$, where α > 0
    solves $E|1 - \eta h|^\alpha = 1$ (when $E\log|1 - \eta h| < 0$: the chain is stable).
    It falls as η grows at fixed B and rises with B at fixed η. Checked values: α = 2 exactly
    at (η, B) = (2/3, 1) and (1, 2), where $E(1 - \eta h)^2 = 1 - 2\eta + \eta^2(1 + 2/B) = 1$.

    **Arguments:** `learning_rate` η > 0; `batch_size` B >= 1.

    **Returns:** α.
    """
    if not np.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be positive and finite, got {learning_rate}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")
    law = stats.chi2(batch_size)
    kink = batch_size / learning_rate  # where 1 − ηh changes sign

    def expectation(function):  # E f(|1 − ηh|), split at the kink
        def integrand(t):
            return function(np.abs(1 - learning_rate * t / batch_size)) * law.pdf(t)

        return sum(integrate.quad(integrand, low, high, limit=200)[0]
                   for low, high in ((0, kink), (kink, np.inf)))

    def log_moment(alpha):
        return math.log(expectation(lambda factor: factor**alpha))

    contraction = expectation(np.log)
    if contraction >= 0:
        raise ValueError(f"SGD with learning_rate {learning_rate} and batch_size {batch_size} "
                         f"has no stationary law (E log|1 − ηh| = {contraction:.3g} >= 0)")
    upper = 1.0
    while log_moment(upper) < 0:
        upper *= 2
    return float(optimize.brentq(log_moment, 1e-6, upper, xtol=1e-10))
