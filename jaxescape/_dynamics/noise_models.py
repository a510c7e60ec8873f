r"""SGD noise models of the source papers: Itô SDEs $d\theta = -\nabla L\,dt + \sqrt{2D}\,dW$.

Every model is the continuous-time limit of SGD with learning rate η in the time unit $t = \eta k$
(k = iterations; docs/THEORY.md §1.2): an SDE escape time τ is τ/η iterations. They differ only in
the diffusion matrix D(θ):

| model | $D(\theta)$ | source (docs/THEORY.md) |
|---|---|---|
| `XieSGDNoise` | $\frac{\eta}{2B}H^*$ or $\frac{\eta}{2B}|H(\theta)|_f$ | Xie, §2.2 [V-abs]/[R] |
| `MoriLossNoise` | $\frac{\eta}{B}L(\theta)\,H^*$ | Mori eq. (13), §3.3 [V-text] |
| `MengPowerLawNoise` | $\frac\eta2(\sigma + 2\kappa[L - L^*])$ (× $H^*$) | Meng, §4.2 [R]/[D] |
| `matched_white_noise` | constant T = the model's D at the minimum | control (GLD), §1.2 |

$H^*$ is the Hessian at `landscape.minimum()`, computed once at construction (with its symmetric
square root), so the step costs no Hessian. Numeric hyperparameters are arrays: sweeping η, B, σ or
κ reuses one compilation. All models use matrix noise $g = \sqrt{2D}$ of shape (dim, dim) (the
symmetric square root), so `exact_mfpt` reads $D = g^2/2$ back in 1-D.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from .sde import AbstractDynamics, OverdampedLangevin
from .._landscapes import AbstractLandscape
from .._arrays import float_array


def _concrete(value):
    """The value as a concrete array, or None when traced (cannot be checked eagerly)."""
    try:
        array = jnp.asarray(value)
        bool(jnp.all(jnp.isfinite(array)))
    except jax.errors.ConcretizationTypeError:
        return None
    return array


def _check(name: str, value, *, lower: float = 0.0, inclusive: bool = False, upper=None) -> None:
    array = _concrete(value)
    if array is None:
        return
    bad = ~jnp.isfinite(array) | ((array < lower) if inclusive else (array <= lower))
    if upper is not None:
        bad = bad | (array > upper)
    if bool(jnp.any(bad)):
        bound = f">= {lower}" if inclusive else f"> {lower}"
        if upper is not None:
            bound += f" and <= {upper}"
        raise ValueError(f"{name} must be finite and {bound}, got {value}")


class QuadraticLandscape(AbstractLandscape):
    r"""Quadratic loss $L = \frac12(\theta - \theta^*)^{\rm T}H(\theta - \theta^*) + L^*$.

    Mori's Fig. 3 test problem (docs/THEORY.md §3.5): least squares on Gaussian data has this loss
    exactly, with $H = X^{\rm T}X/N$ and $L^* > 0$ the residual loss. It has no saddle.

    **Arguments:**

    - `hessian`: H, symmetric positive definite, shape (dim, dim).
    - `minimum_position`: θ*, shape (dim,).
    - `minimum_loss`: L* (> 0 for `MoriLossNoise`).
    """

    hessian_matrix: jax.Array = eqx.field(converter=float_array)
    minimum_position: jax.Array = eqx.field(converter=float_array)
    minimum_loss: jax.Array = eqx.field(converter=float_array)

    def __check_init__(self):
        dim = self.minimum_position.shape[0] if self.minimum_position.ndim == 1 else -1
        if self.hessian_matrix.shape != (dim, dim):
            raise ValueError(
                "hessian must have shape (dim, dim) and minimum_position shape (dim,), got "
                f"{self.hessian_matrix.shape} and {self.minimum_position.shape}"
            )

    @property
    def dim(self) -> int:
        return self.minimum_position.shape[0]

    @property
    def batch_invariant(self) -> bool:
        return self.dim == 1  # a matrix product above one dimension

    def loss(self, y):
        offset = y - self.minimum_position
        return 0.5 * offset @ (self.hessian_matrix @ offset) + self.minimum_loss

    def gradient(self, y):
        return self.hessian_matrix @ (y - self.minimum_position)

    def hessian(self, y):
        return self.hessian_matrix

    def minimum(self):
        return self.minimum_position


class LossOffset(AbstractLandscape):
    """`landscape` with a constant added to its loss, $L + c$: gives a minimum a positive loss.

    Mori's noise needs $L^* > 0$ (§3.3); e.g. `LossOffset(TiltedDoubleWell(...), 0.05)`. Minimum,
    saddle, barrier, gradient and Hessian are those of the wrapped landscape.
    """

    landscape: AbstractLandscape
    offset: jax.Array = eqx.field(converter=float_array)

    @property
    def dim(self) -> int:
        return self.landscape.dim

    @property
    def batch_invariant(self) -> bool:
        return self.landscape.batch_invariant

    def loss(self, y):
        return self.landscape.loss(y) + self.offset

    def gradient(self, y):
        return self.landscape.gradient(y)

    def hessian(self, y):
        return self.landscape.hessian(y)

    def minimum(self):
        return self.landscape.minimum()

    def saddle(self):
        return self.landscape.saddle()

    def escape_direction(self):
        return self.landscape.escape_direction()

    def barrier(self):
        return self.landscape.barrier()


class PiecewiseQuadraticValley(AbstractLandscape):
    r"""1-D $C^1$ valley of quadratic pieces: Xie's path-parameter geometry (docs/THEORY.md §2.5).

    $L = \frac12 H_a x^2$ up to $x_1$ (it climbs a fraction α of the barrier there), a concave
    middle piece of constant curvature $-c$, and the barrier cap $L = \Delta L - \frac12|H_b|
    (x - x_b)^2$, which climbs the last fraction β. The gradient is continuous: with
    $g = \sqrt{2\alpha H_a\Delta L}$ and $g_2 = \sqrt{2\beta|H_b|\Delta L}$, $x_1 = g/H_a$, the
    middle piece has length $\ell = 2(1-\alpha-\beta)\Delta L/(g + g_2)$ and $c = (g - g_2)/\ell$,
    and $x_b = x_1 + \ell + g_2/|H_b|$ ([D]).

    Defaults α = s = |H_b|/(H_a + |H_b|), β = 1 − s: no middle piece, the two-piece valley whose
    local SGD diffusion $\frac{\eta}{2B}|L''|$ (no regularisation needed) has exactly Xie's exponent
    $\frac{2B\Delta L}{\eta}(\frac{s}{H_a} + \frac{1-s}{|H_b|})$. Fixed α, β (e.g. 0.3, 0.5) keep
    both quadratic regions a fixed share of the barrier while $H_a$ changes at fixed $|H_b|$: the
    Kramers prefactor law $\tau \propto H_a^{-1/2}$ then holds at moderate ΔL/T (with the two-piece
    valley the minimum's piece climbs only $s\Delta L$, a fraction of T when $H_a \gg |H_b|$).
    Beyond $x_b$ the loss keeps falling (absorb there, e.g. with `past_saddle`).

    **Arguments:**

    - `barrier_height`: ΔL > 0.
    - `curvature`: $H_a$ = L'' at the minimum x = 0, > 0.
    - `saddle_curvature`: $|H_b|$ = −L'' at the barrier top, > 0.
    - `minimum_fraction`: α ∈ (0, 1), default s.
    - `saddle_fraction`: β ∈ (0, 1 − α], default 1 − s; needs $\beta|H_b| \le \alpha H_a$.
    """

    barrier_height: jax.Array = eqx.field(converter=float_array)
    curvature: jax.Array = eqx.field(converter=float_array)
    saddle_curvature: jax.Array = eqx.field(converter=float_array)
    minimum_fraction: jax.Array = eqx.field(converter=float_array)
    saddle_fraction: jax.Array = eqx.field(converter=float_array)

    def __init__(self, barrier_height, curvature, saddle_curvature, minimum_fraction=None,
                 saddle_fraction=None):
        self.barrier_height = barrier_height
        self.curvature = curvature
        self.saddle_curvature = saddle_curvature
        two_piece = jnp.asarray(saddle_curvature) / (
            jnp.asarray(curvature) + jnp.asarray(saddle_curvature)
        )
        self.minimum_fraction = two_piece if minimum_fraction is None else minimum_fraction
        self.saddle_fraction = 1 - two_piece if saddle_fraction is None else saddle_fraction

    def __check_init__(self):
        values = _concrete(jnp.stack([
            self.barrier_height, self.curvature, self.saddle_curvature, self.minimum_fraction,
            self.saddle_fraction,
        ]))
        if values is None:
            return
        barrier, a, b, alpha, beta = (float(v) for v in values)
        if not (barrier > 0 and a > 0 and b > 0 and alpha > 0 and beta > 0):
            raise ValueError("barrier, curvatures and fractions must be positive")
        if alpha + beta > 1 + 1e-6 or beta * b > alpha * a * (1 + 1e-6):
            raise ValueError(
                "need minimum_fraction + saddle_fraction <= 1 and saddle_fraction·|H_b| <= "
                f"minimum_fraction·H_a, got α={alpha}, β={beta}, H_a={a}, |H_b|={b}"
            )

    @property
    def dim(self) -> int:
        return 1

    def _geometry(self):
        a, b, barrier = self.curvature, self.saddle_curvature, self.barrier_height
        rise = jnp.sqrt(2 * self.minimum_fraction * a * barrier)
        fall = jnp.sqrt(2 * self.saddle_fraction * b * barrier)
        first = rise / a
        length = 2 * (1 - self.minimum_fraction - self.saddle_fraction) * barrier / (rise + fall)
        length = jnp.maximum(length, 0.0)
        middle = jnp.where(length > 0, (rise - fall) / jnp.where(length > 0, length, 1.0), 0.0)
        second = first + length
        return rise, first, second, middle, second + fall / b

    def path_fraction(self):
        """α: the fraction of ΔL climbed in the minimum's quadratic piece (Xie's s, two pieces)."""
        return self.minimum_fraction

    def middle_curvature(self):
        """c ≥ 0: the middle piece has L'' = −c (0 when there is no middle piece)."""
        return self._geometry()[3]

    def loss(self, y):
        x = y[0]
        rise, first, second, middle, saddle = self._geometry()
        inner = 0.5 * self.curvature * x**2
        between = (self.minimum_fraction * self.barrier_height + rise * (x - first)
                   - 0.5 * middle * (x - first) ** 2)
        outer = self.barrier_height - 0.5 * self.saddle_curvature * (x - saddle) ** 2
        return jnp.where(x <= first, inner, jnp.where(x <= second, between, outer))

    def minimum(self):
        return jnp.zeros((1,), self.curvature.dtype)

    def saddle(self):
        return jnp.reshape(self._geometry()[4], (1,))

    def barrier(self):
        return self.barrier_height


def _symmetric_root(matrix: jax.Array) -> jax.Array:
    """Symmetric square root of a positive semi-definite matrix (eigenvalues clipped at 0)."""
    eigenvalues, vectors = jnp.linalg.eigh(matrix)
    return (vectors * jnp.sqrt(jnp.maximum(eigenvalues, 0.0))) @ vectors.T


def _minimum_hessian(landscape: AbstractLandscape) -> jax.Array:
    hessian = landscape.hessian(landscape.minimum())
    return 0.5 * (hessian + hessian.T)


class XieSGDNoise(AbstractDynamics):
    r"""Xie et al.'s SGD diffusion: $D = \frac{\eta}{2B}H$ (docs/THEORY.md §2.2).

    $d\theta = -\nabla L\,dt + \sqrt{2D}\,dW$ with, by `hessian`:

    - `None` (default): $D = \frac{\eta}{2B}H^*$, the Hessian at the minimum, constant. The
      near-minimum form "$C \approx H/B$" [V-abs]; the prefactor η/(2B) is [R] (it matches the
      quoted $\log\tau = O(2B\Delta L/(\eta H_{ae}))$). In 1-D the exponent is exactly
      $2B\Delta L/(\eta H^*)$ (the path parameter s = 1 of §2.5).
    - `"local"`: $D(\theta) = \frac{\eta}{2B}\,V\,\mathrm{diag}\big(\max(|\lambda_i|,
      f\lambda_{\min}^*)\big)V^{\rm T}$ with $H(\theta) = V\mathrm{diag}(\lambda)V^{\rm T}$, f =
      `floor` and $\lambda_{\min}^*$ the smallest eigenvalue of $H^*$. $|H|$ is what Xie use at
      the saddle ($|H_{be}|$, §2.2 [R]); the floor regularises the inflection points where
      $L'' = 0$, at which $D = 0$ would make $\int L'/D$ diverge (§2.5 caution). The 1-D escape
      exponent is $\frac{2B}{\eta}\int_{\theta_a}^{\theta_b} L'/\max(|L''|, fH^*)\,du$ (§1.4,
      [D]); for a landscape whose Hessians all scale with k at fixed barrier it is ∝ 1/k.

    The local form needs a Hessian and an eigendecomposition per step (cheap in 1-D).

    **Arguments:**

    - `landscape`: the loss; its `minimum()` gives $H^*$.
    - `learning_rate`: η > 0.
    - `batch_size`: B > 0 (a real number: only η/B enters).
    - `hessian`: None (Hessian at the minimum) or "local".
    - `floor`: f in (0, 1], the eigenvalue floor as a fraction of $\lambda_{\min}(H^*)$ (local
      only). Default 1/2; the exponent grows like log(1/f) as f → 0 (docs/THEORIES.md).
    """

    landscape: AbstractLandscape
    learning_rate: jax.Array = eqx.field(converter=float_array)
    batch_size: jax.Array = eqx.field(converter=float_array)
    hessian: str | None = eqx.field(static=True)
    floor: jax.Array = eqx.field(converter=float_array)
    minimum_hessian: jax.Array
    minimum_hessian_root: jax.Array
    minimum_lowest_eigenvalue: jax.Array

    def __init__(self, landscape, learning_rate, batch_size, hessian=None, floor=0.1):
        if hessian not in (None, "local"):
            raise ValueError(f"hessian must be None or 'local', got {hessian!r}")
        self.landscape = landscape
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.hessian = hessian
        self.floor = floor
        self.minimum_hessian = _minimum_hessian(landscape)
        self.minimum_hessian_root = _symmetric_root(self.minimum_hessian)
        self.minimum_lowest_eigenvalue = jnp.min(jnp.linalg.eigvalsh(self.minimum_hessian))

    def noise_kind(self):
        return "matrix"

    def drift(self, t, y):
        return -self.landscape.gradient(y)

    def _scale(self):
        return self.learning_rate / (2 * self.batch_size)

    def _local_eigen(self, y):
        hessian = self.landscape.hessian(y)
        if y.shape[0] == 1:  # no eigensolver needed in 1-D
            eigenvalues, vectors = hessian[0], jnp.ones((1, 1), hessian.dtype)
        else:
            eigenvalues, vectors = jnp.linalg.eigh(0.5 * (hessian + hessian.T))
        floor = self.floor * self.minimum_lowest_eigenvalue
        return jnp.maximum(jnp.abs(eigenvalues), floor), vectors

    def diffusion_matrix(self, y):
        """D(θ), shape (dim, dim)."""
        if self.hessian is None:
            return self._scale() * self.minimum_hessian
        eigenvalues, vectors = self._local_eigen(y)
        return self._scale() * (vectors * eigenvalues) @ vectors.T

    def diffusion(self, t, y):
        root_scale = jnp.sqrt(2 * self._scale())
        if self.hessian is None:
            return (root_scale * self.minimum_hessian_root).astype(y.dtype)
        eigenvalues, vectors = self._local_eigen(y)
        return (root_scale * (vectors * jnp.sqrt(eigenvalues)) @ vectors.T).astype(y.dtype)

    def loss(self, y):
        return self.landscape.loss(y)

    def check_parameters(self):
        _check("learning_rate", self.learning_rate)
        _check("batch_size", self.batch_size)
        _check("floor", self.floor, upper=1.0)
        lowest = _concrete(self.minimum_lowest_eigenvalue)
        if lowest is not None and not bool(lowest > 0):
            raise ValueError(
                "the Hessian at the minimum must be positive definite, lowest eigenvalue "
                f"{float(lowest)}"
            )


class MoriLossNoise(AbstractDynamics):
    r"""Mori et al.'s loss-proportional SGD noise: $D(\theta) = \frac{\eta}{B}L(\theta)\,H^*$.

    The Itô SDE (13) of Mori et al. (docs/THEORY.md §3.3, [V-text]),
    $d\theta = -\nabla L\,dt + \sqrt{\frac{2\eta L(\theta)}{B}H(\theta^*)}\,dW$, from
    $\Sigma \approx \frac{2L}{B}H^*$ (eq. 6 with the 1/(NB) OCR typo corrected to 1/B, §3.2).
    Stationary law $\propto L^{-(1 + B/(\eta h^*))}$ for isotropic $H^* = h^*I$ (eq. 18). Needs
    $L^* = L(\theta^*) > 0$ (with $L^* = 0$ the noise vanishes at the minimum and nothing
    escapes); `check_parameters` raises otherwise. Where a landscape's loss drops below 0 the
    noise is taken as 0 ($L$ clipped at 0).

    **Arguments:**

    - `landscape`: the loss, with `minimum()`; $L^* > 0$.
    - `learning_rate`: η > 0.
    - `batch_size`: B > 0.
    """

    landscape: AbstractLandscape
    learning_rate: jax.Array = eqx.field(converter=float_array)
    batch_size: jax.Array = eqx.field(converter=float_array)
    minimum_hessian: jax.Array
    minimum_hessian_root: jax.Array

    def __init__(self, landscape, learning_rate, batch_size):
        self.landscape = landscape
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.minimum_hessian = _minimum_hessian(landscape)
        self.minimum_hessian_root = _symmetric_root(self.minimum_hessian)

    def noise_kind(self):
        return "matrix"

    def drift(self, t, y):
        return -self.landscape.gradient(y)

    def _coefficient(self, y):
        return self.learning_rate * jnp.maximum(self.landscape.loss(y), 0.0) / self.batch_size

    def diffusion_matrix(self, y):
        """D(θ), shape (dim, dim)."""
        return self._coefficient(y) * self.minimum_hessian

    def diffusion(self, t, y):
        return (jnp.sqrt(2 * self._coefficient(y)) * self.minimum_hessian_root).astype(y.dtype)

    def loss(self, y):
        return self.landscape.loss(y)

    def check_parameters(self):
        _check("learning_rate", self.learning_rate)
        _check("batch_size", self.batch_size)
        minimum_loss = _concrete(self.landscape.loss(self.landscape.minimum()))
        if minimum_loss is not None and not bool(minimum_loss > 0):
            raise ValueError(
                "MoriLossNoise needs a positive loss at the minimum, L* > 0 (the noise is "
                f"∝ L and vanishes at an interpolating minimum), got L* = {float(minimum_loss)}"
            )


class MengPowerLawNoise(AbstractDynamics):
    r"""Meng et al.'s power-law dynamic, $D(\theta) = \frac\eta2(\sigma + 2\kappa[L(\theta)-L^*])$.

    docs/THEORY.md §4.2: the SGD covariance is quadratic in the state near a minimum,
    $C(w) = \sigma_g + \kappa h (w - w^*)^2 = \sigma + 2\kappa[L(w) - L^*]$ for a quadratic valley
    (parameterisation [R]), and $D = \eta C/2$. With `hessian_aligned=False` the noise is isotropic,
    $D = \frac\eta2 C(\theta) I$; with `hessian_aligned=True` it is $D = \frac\eta2 C(\theta)H^*$
    (Meng's "κ ∝ h" form, under which $\log\tau \propto 1/h$, §4.4). In 1-D the escape time is
    $\frac{2\pi}{\sqrt{h_a|h_b|}}(1 + 2\kappa\Delta L/\sigma)^{1/(\eta\kappa) + 1/2}$ (§4.4 [D,
    V-num]) with σ, κ multiplied by $h_a$ when aligned. κ = 0 is constant (Langevin) noise
    $D = \eta\sigma/2$. $C$ is clipped at 0 where $L < L^* - \sigma/(2\kappa)$.

    **Arguments:**

    - `landscape`: the loss, with `minimum()` (gives $L^*$ and $H^*$).
    - `learning_rate`: η > 0.
    - `sigma`: σ > 0, the covariance at the minimum.
    - `kappa`: κ >= 0, the coefficient of the quadratic part.
    - `hessian_aligned`: multiply the covariance by $H^*$.
    """

    landscape: AbstractLandscape
    learning_rate: jax.Array = eqx.field(converter=float_array)
    sigma: jax.Array = eqx.field(converter=float_array)
    kappa: jax.Array = eqx.field(converter=float_array)
    hessian_aligned: bool = eqx.field(static=True)
    minimum_loss: jax.Array
    minimum_hessian: jax.Array
    minimum_hessian_root: jax.Array

    def __init__(self, landscape, learning_rate, sigma, kappa, hessian_aligned=False):
        self.landscape = landscape
        self.learning_rate = learning_rate
        self.sigma = sigma
        self.kappa = kappa
        self.hessian_aligned = bool(hessian_aligned)
        self.minimum_loss = landscape.loss(landscape.minimum())
        self.minimum_hessian = _minimum_hessian(landscape)
        self.minimum_hessian_root = _symmetric_root(self.minimum_hessian)

    def noise_kind(self):
        return "matrix"

    def drift(self, t, y):
        return -self.landscape.gradient(y)

    def _coefficient(self, y):
        excess = self.landscape.loss(y) - self.minimum_loss
        return 0.5 * self.learning_rate * jnp.maximum(self.sigma + 2 * self.kappa * excess, 0.0)

    def diffusion_matrix(self, y):
        """D(θ), shape (dim, dim)."""
        shape = self.minimum_hessian if self.hessian_aligned else jnp.eye(y.shape[0], dtype=y.dtype)
        return self._coefficient(y) * shape

    def diffusion(self, t, y):
        scale = jnp.sqrt(2 * self._coefficient(y))
        if self.hessian_aligned:
            return (scale * self.minimum_hessian_root).astype(y.dtype)
        return (scale * jnp.eye(y.shape[0], dtype=y.dtype)).astype(y.dtype)

    def loss(self, y):
        return self.landscape.loss(y)

    def check_parameters(self):
        _check("learning_rate", self.learning_rate)
        _check("sigma", self.sigma)
        _check("kappa", self.kappa, inclusive=True)


def matched_white_noise(model: AbstractDynamics, direction: str = "escape") -> OverdampedLangevin:
    r"""The control: white-noise Langevin $d\theta = -\nabla L\,dt + \sqrt{2T}\,dW$ (GLD, §1.2).

    T equals the model's diffusion at the minimum, $D(\theta^*)$: its component along the
    landscape's escape direction e ($e^{\rm T}D^*e$, `direction="escape"`, needs a known saddle) or
    its mean eigenvalue ($\mathrm{tr}\,D^*/\dim$, `direction="mean"`); in 1-D both are
    $D(\theta^*)$.
    Near the minimum the two dynamics then have the same noise along the escape path, and they
    differ only in how the noise changes on the way up (Xie's "SGD vs GD with injected noise",
    §2.1, 2.4–2.5).
    """
    if direction not in ("escape", "mean"):
        raise ValueError(f"direction must be 'escape' or 'mean', got {direction!r}")
    landscape = model.landscape
    diffusion = model.diffusion_matrix(landscape.minimum())
    if direction == "escape":
        unit = landscape.escape_direction()
        temperature = unit @ diffusion @ unit
    else:
        temperature = jnp.trace(diffusion) / diffusion.shape[0]
    return OverdampedLangevin(landscape, temperature)
