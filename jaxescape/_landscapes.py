r"""Loss landscapes: `eqx.Module`s whose numeric parameters are arrays (sweeps do not recompile).

Every landscape maps a parameter vector `y` of shape `(dim,)` to a scalar loss and knows, where
they are known in closed form, its minimum (the basin particles start in), the index-1 saddle they
escape through, and the escape direction. Hessians come from `jax.hessian` (exact).
"""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from ._defaults import renamed_keywords
from ._arrays import float_array


class AbstractLandscape(eqx.Module):
    """A loss L(y) of a parameter vector y of shape (dim,)."""

    @abc.abstractmethod
    def loss(self, y: jax.Array) -> jax.Array:
        """The loss at one point y of shape (dim,)."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Number of parameters."""

    def minimum(self) -> jax.Array:
        """The minimum whose basin particles start in."""
        raise NotImplementedError(f"{type(self).__name__} does not know its minimum")

    def saddle(self) -> jax.Array:
        """The index-1 saddle the particles escape through."""
        raise NotImplementedError(f"{type(self).__name__} does not know its saddle")

    def escape_direction(self) -> jax.Array:
        """Unit vector from the minimum towards (and through) the saddle."""
        direction = self.saddle() - self.minimum()
        return direction / jnp.linalg.norm(direction)

    def barrier(self) -> jax.Array:
        """ΔL = L(saddle) − L(minimum)."""
        return self.loss(self.saddle()) - self.loss(self.minimum())

    @property
    def batch_invariant(self) -> bool:
        """Whether its loss and gradient, vmapped over particles, give every particle the same
        numbers at any batch size (True for closed forms, elementwise over the batch; False
        where it contracts over data or a matrix: the particles are then stepped in fixed
        blocks, `AbstractParticleProcess.step_block`)."""
        return True

    def gradient(self, y: jax.Array) -> jax.Array:
        return jax.grad(self.loss)(y)

    def hessian(self, y: jax.Array) -> jax.Array:
        return jax.hessian(self.loss)(y)


def _quartic_coefficients(barrier, curvature, asymmetry):
    """Scale and saddle offset of L'(u) = c·u(u − p)(u − r·p) with L(p) − L(0) = ΔL, L''(0) = k.

    ΔL = c·p⁴(2r − 1)/12 and k = c·r·p², hence p = sqrt(12·r·ΔL/(k(2r − 1))), c = k/(r·p²).
    """
    saddle_offset = jnp.sqrt(12 * asymmetry * barrier / (curvature * (2 * asymmetry - 1)))
    scale = curvature / (asymmetry * saddle_offset**2)
    return scale, saddle_offset


def _quartic_loss(u, scale, saddle_offset, asymmetry):
    p, q = saddle_offset, asymmetry * saddle_offset
    return scale * (u**4 / 4 - (p + q) * u**3 / 3 + p * q * u**2 / 2)


class TiltedDoubleWell(AbstractLandscape):
    r"""1-D tilted quartic double well with independent barrier and sharpness.

    $L'(x) = c\,u\,(u-p)(u-rp)$ with $u = x - x_a$: minimum at $x_a$ ($L = 0$), barrier top at
    $x_a + p$, second (deeper for r > 2) minimum at $x_a + rp$. The barrier $\Delta L$ and the
    curvature at the minimum $L''(x_a) = k$ are set independently; the curvature at the barrier
    top is $|L''(x_b)| = k(r-1)/r$. `asymmetry` r > 1 tilts the well (r = 2 is symmetric).

    **Arguments:**

    - `barrier`: ΔL > 0.
    - `curvature`: k = L''(minimum) > 0 (the sharpness).
    - `asymmetry`: r > 1, second minimum at distance r·p from the first.
    - `minimum_position`: x_a.
    """

    barrier_height: jax.Array = eqx.field(converter=float_array)
    curvature: jax.Array = eqx.field(converter=float_array)
    asymmetry: jax.Array = eqx.field(converter=float_array, default=2.0)
    minimum_position: jax.Array = eqx.field(converter=float_array, default=0.0)

    @property
    def dim(self) -> int:
        return 1

    def _coefficients(self):
        return _quartic_coefficients(self.barrier_height, self.curvature, self.asymmetry)

    def loss(self, y):
        scale, saddle_offset = self._coefficients()
        return _quartic_loss(y[0] - self.minimum_position, scale, saddle_offset, self.asymmetry)

    def minimum(self):
        return jnp.reshape(self.minimum_position, (1,))

    def saddle(self):
        _, saddle_offset = self._coefficients()
        return jnp.reshape(self.minimum_position + saddle_offset, (1,))

    def other_minimum(self):
        _, saddle_offset = self._coefficients()
        return jnp.reshape(self.minimum_position + self.asymmetry * saddle_offset, (1,))

    def barrier(self):
        return self.barrier_height

    def saddle_curvature(self):
        """|L''(saddle)| = k(r − 1)/r."""
        return self.curvature * (self.asymmetry - 1) / self.asymmetry


class DoubleWellProduct(AbstractLandscape):
    r"""Separable N-D product of tilted double wells: $L(y) = \sum_i L_i(y_i)$.

    Each coordinate has its own barrier, curvature and asymmetry (arrays of shape (dim,)). The
    particle starts at the joint minimum and escapes along coordinate `escape_coordinate` (the
    saddle has that coordinate at its barrier top and the others at their minima).
    """

    barrier_height: jax.Array = eqx.field(converter=float_array)
    curvature: jax.Array = eqx.field(converter=float_array)
    asymmetry: jax.Array = eqx.field(converter=float_array)
    escape_coordinate: int = eqx.field(static=True, default=0)

    def __check_init__(self):
        shapes = {self.barrier_height.shape, self.curvature.shape, self.asymmetry.shape}
        if len(shapes) != 1 or self.barrier_height.ndim != 1:
            raise ValueError(
                "barrier_height, curvature and asymmetry must be 1-D arrays of one shape (dim,), "
                f"got {[a.shape for a in (self.barrier_height, self.curvature, self.asymmetry)]}"
            )
        if not 0 <= self.escape_coordinate < self.barrier_height.shape[0]:
            raise ValueError(
                f"escape_coordinate must be in [0, {self.barrier_height.shape[0] - 1}], "
                f"got {self.escape_coordinate}"
            )

    @property
    def dim(self) -> int:
        return self.barrier_height.shape[0]

    def loss(self, y):
        scale, saddle_offset = _quartic_coefficients(
            self.barrier_height, self.curvature, self.asymmetry
        )
        return jnp.sum(_quartic_loss(y, scale, saddle_offset, self.asymmetry))

    def minimum(self):
        return jnp.zeros(self.dim, self.barrier_height.dtype)

    def saddle(self):
        _, saddle_offset = _quartic_coefficients(
            self.barrier_height, self.curvature, self.asymmetry
        )
        return self.minimum().at[self.escape_coordinate].set(saddle_offset[self.escape_coordinate])

    def barrier(self):
        return self.barrier_height[self.escape_coordinate]


class AnisotropicWell(AbstractLandscape):
    r"""N-D well: a tilted double well along one direction, quadratic across it.

    $L(y) = L_{\rm dw}(z_0) + \sum_{i\ge1} \tfrac12 k_i z_i^2$ with $z = R^{\rm T} y$ for an
    orthogonal `rotation` R (identity by default), so the transverse curvatures $k_i$ differ per
    direction and the escape direction is R's first column. Hessian at the minimum:
    $R\,\mathrm{diag}(k, k_1, …)R^{\rm T}$; at the saddle:
    $R\,\mathrm{diag}(-k(r-1)/r, k_1, …)R^{\rm T}$.
    """

    barrier_height: jax.Array = eqx.field(converter=float_array)
    curvature: jax.Array = eqx.field(converter=float_array)
    transverse_curvatures: jax.Array = eqx.field(converter=float_array)
    asymmetry: jax.Array = eqx.field(converter=float_array, default=2.0)
    rotation: jax.Array | None = None

    def __check_init__(self):
        if self.transverse_curvatures.ndim != 1:
            raise ValueError(
                "transverse_curvatures must be a 1-D array of shape (dim - 1,), "
                f"got shape {self.transverse_curvatures.shape}"
            )
        if self.rotation is not None and self.rotation.shape != (self.dim, self.dim):
            raise ValueError(
                f"rotation must have shape ({self.dim}, {self.dim}), got {self.rotation.shape}"
            )

    @property
    def dim(self) -> int:
        return self.transverse_curvatures.shape[0] + 1

    def _to_local(self, y):
        return y if self.rotation is None else self.rotation.T @ y

    def _to_global(self, z):
        return z if self.rotation is None else self.rotation @ z

    def loss(self, y):
        z = self._to_local(y)
        scale, saddle_offset = _quartic_coefficients(
            self.barrier_height, self.curvature, self.asymmetry
        )
        along = _quartic_loss(z[0], scale, saddle_offset, self.asymmetry)
        return along + 0.5 * jnp.sum(self.transverse_curvatures * z[1:] ** 2)

    def minimum(self):
        return jnp.zeros(self.dim, self.curvature.dtype)

    def saddle(self):
        _, saddle_offset = _quartic_coefficients(
            self.barrier_height, self.curvature, self.asymmetry
        )
        return self._to_global(self.minimum().at[0].set(saddle_offset))

    def barrier(self):
        return self.barrier_height


# Per-coordinate critical points of s(x) = (x⁴ − 16x² + 5x)/2: roots of 2x³ − 16x + 2.5 = 0.
_STYBLINSKI_TANG_ROOTS = np.sort(np.roots([2.0, 0.0, -16.0, 2.5]).real)
_ST_GLOBAL, _ST_SADDLE, _ST_LOCAL = (float(root) for root in _STYBLINSKI_TANG_ROOTS)


class StyblinskiTang(AbstractLandscape):
    r"""Styblinski–Tang function with sharpness scale k: $L_k(y) = f(\sqrt{k}\,y)$.

    $f(x) = \tfrac12\sum_i (x_i^4 - 16x_i^2 + 5x_i)$. Rescaling the argument multiplies every
    Hessian by k and keeps every barrier (25.225 per coordinate from the local minimum at
    x = 2.7468/√k, 39.362 from the global one), as Xie et al. need (docs/THEORY.md §2.7). Particles
    start at the all-local minimum and escape along `escape_coordinate` through
    x = 0.15673/√k towards the global minimum −2.9035/√k. `loss_scale` multiplies f.
    """

    sharpness: jax.Array = eqx.field(converter=float_array)
    loss_scale: jax.Array = eqx.field(converter=float_array, default=1.0)
    num_dimensions: int = eqx.field(static=True, default=1)
    escape_coordinate: int = eqx.field(static=True, default=0)

    @renamed_keywords(dim="num_dimensions")
    def __init__(self, sharpness, loss_scale=1.0, num_dimensions=1, escape_coordinate=0):
        self.sharpness = sharpness
        self.loss_scale = loss_scale
        self.num_dimensions = num_dimensions
        self.escape_coordinate = escape_coordinate

    def __check_init__(self):
        if self.num_dimensions < 1:
            raise ValueError(f"num_dimensions must be >= 1, got {self.num_dimensions}")
        if not 0 <= self.escape_coordinate < self.num_dimensions:
            raise ValueError(
                f"escape_coordinate must be in [0, {self.num_dimensions - 1}], "
                f"got {self.escape_coordinate}"
            )

    @property
    def dim(self) -> int:
        return self.num_dimensions

    def loss(self, y):
        x = jnp.sqrt(self.sharpness) * y
        return self.loss_scale * 0.5 * jnp.sum(x**4 - 16 * x**2 + 5 * x)

    def minimum(self):
        return jnp.full(self.dim, _ST_LOCAL) / jnp.sqrt(self.sharpness)

    def saddle(self):
        return self.minimum().at[self.escape_coordinate].set(_ST_SADDLE / jnp.sqrt(self.sharpness))

    def global_minimum(self):
        return jnp.full(self.dim, _ST_GLOBAL) / jnp.sqrt(self.sharpness)


class FunctionLandscape(AbstractLandscape):
    """Any user JAX function `loss_function(y, parameters) -> scalar` of a vector y of shape (dim,).

    `parameters` is a pytree of arrays passed through to the function (so sweeping them does not
    recompile); `minimum` and `saddle` are optional known points. Pass a module-level function,
    not a fresh lambda per call: a new function object is a new compilation.
    """

    loss_function: Callable = eqx.field(static=True)
    num_dimensions: int = eqx.field(static=True)
    parameters: object = None
    known_minimum: jax.Array | None = eqx.field(default=None)
    known_saddle: jax.Array | None = eqx.field(default=None)

    @property
    def dim(self) -> int:
        return self.num_dimensions

    @property
    def batch_invariant(self) -> bool:
        return False  # a user function may contract (a network, a data set)

    def loss(self, y):
        return self.loss_function(y, self.parameters)

    def minimum(self):
        if self.known_minimum is None:
            return super().minimum()
        return jnp.reshape(jnp.asarray(self.known_minimum), (self.dim,))

    def saddle(self):
        if self.known_saddle is None:
            return super().saddle()
        return jnp.reshape(jnp.asarray(self.known_saddle), (self.dim,))
