r"""Escape criteria: when has a particle left the basin it started in?

A simulation takes a tuple of criteria; a particle escapes at the first step where any criterion
holds, and records which one (its index in the tuple, the "boundary"). Criteria are pure functions
of one particle's position.

Euler–Maruyama only sees the path at the grid times and misses excursions across a boundary
between two steps, which biases first-passage times upwards by O(sqrt(dt)). For a hyperplane the
Brownian-bridge crossing probability between two inside points at distances $d_0, d_1$ from the
plane is exactly $\exp(-2 d_0 d_1 / (\sigma_n^2\,\Delta t))$ for frozen coefficients, with
$\sigma_n^2 = |g^{\rm T} n|^2$ the noise variance normal to the plane (Mannella 1999; Gobet 2000).
`HalfSpace` uses it when the simulation asks for the crossing correction, which turns the bias
into O(dt).

A curved boundary {φ(y) = c} of a differentiable level function φ (`LossAbove`, `OutsideBall`,
any `AbstractLevelCriterion`) is linearised at the step (Gobet 2000; Buchmann 2003): the same
formula with the first-order distances $d_i = (c - \varphi(y_i))/|\nabla\varphi(y_i)|$ at both
ends and the noise variance along $n = \nabla\varphi(y_0)/|\nabla\varphi(y_0)|$. The error of the
linearisation is O(dt) per near-boundary step, so the bias is O(dt) as for a plane
(tests/MEASURED_BIAS.md).
"""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from ._fused import coordinate_sum, dot
from ._landscapes import AbstractLandscape
from ._arrays import float_array


class AbstractEscapeCriterion(eqx.Module):
    """Decides whether one particle at position y (shape (dim,)) is outside its basin."""

    @abc.abstractmethod
    def is_outside(self, y: jax.Array) -> jax.Array:
        """Boolean scalar: True once the particle has escaped."""

    def crossing_probability(
        self, y_start: jax.Array, y_end: jax.Array, normal_variance_fn: Callable, dt: jax.Array
    ) -> jax.Array:
        """Probability that the continuous path crossed between two inside points (0 if unknown)."""
        return jnp.zeros((), y_start.dtype)


class HalfSpace(AbstractEscapeCriterion):
    """Escaped once normal · y >= offset (crossing a hyperplane)."""

    normal: jax.Array = eqx.field(converter=float_array)
    offset: jax.Array = eqx.field(converter=float_array)

    def is_outside(self, y):
        return dot(self.normal, y) >= self.offset

    def crossing_probability(self, y_start, y_end, normal_variance_fn, dt):
        distance_start = self.offset - dot(self.normal, y_start)
        distance_end = self.offset - dot(self.normal, y_end)
        variance = normal_variance_fn(self.normal) * dt
        exponent = -2 * distance_start * distance_end / jnp.maximum(variance, 1e-300)
        return jnp.exp(jnp.minimum(exponent, 0.0))


def _bridge_crossing(distance_start, distance_end, normal, normal_variance_fn, dt):
    """exp(−2 d₀ d₁ / (σₙ² Δt)) for two inside points (0 where the normal variance vanishes)."""
    variance = normal_variance_fn(normal) * dt
    positive = variance > 0
    exponent = -2 * distance_start * distance_end / jnp.where(positive, variance, 1.0)
    return jnp.where(positive, jnp.exp(jnp.minimum(exponent, 0.0)), 0.0)


class AbstractLevelCriterion(AbstractEscapeCriterion):
    r"""Escaped once a differentiable level function φ(y) >= `threshold`.

    Subclasses give `level` (and may give `level_gradient`, by default `jax.grad(level)`). The
    crossing probability linearises the boundary {φ = c} at the step (Gobet 2000; Buchmann
    2003): $d_i = (c - \varphi(y_i))/|\nabla\varphi(y_i)|$ at both ends,
    $n = \nabla\varphi(y_0)/|\nabla\varphi(y_0)|$, $p = \exp(-2d_0d_1/(|g^{\rm T}n|^2\Delta t))$.
    Where ∇φ vanishes (at a minimum of the loss) the distance is infinite and p = 0.
    """

    threshold: eqx.AbstractVar[jax.Array]

    @abc.abstractmethod
    def level(self, y: jax.Array) -> jax.Array:
        """The level function φ(y), a scalar."""

    def level_gradient(self, y: jax.Array) -> jax.Array:
        """∇φ(y), shape (dim,)."""
        return jax.grad(self.level)(y)

    def is_outside(self, y):
        return self.level(y) >= self.threshold

    def crossing_probability(self, y_start, y_end, normal_variance_fn, dt):
        tiny = jnp.finfo(y_start.dtype).tiny

        def distance_and_normal(y):
            gradient = self.level_gradient(y)
            norm = jnp.maximum(jnp.sqrt(coordinate_sum(gradient**2)), tiny)
            return (self.threshold - self.level(y)) / norm, gradient / norm

        distance_start, normal = distance_and_normal(y_start)
        distance_end, _ = distance_and_normal(y_end)
        return _bridge_crossing(distance_start, distance_end, normal, normal_variance_fn, dt)


class OutsideBall(AbstractEscapeCriterion):
    """Escaped once |y − center| >= radius.

    Its crossing probability uses the exact distances r − |y − center| at both ends and the
    radial normal at the start (the sphere linearised at the step, Gobet 2000).
    """

    center: jax.Array = eqx.field(converter=float_array)
    radius: jax.Array = eqx.field(converter=float_array)

    def is_outside(self, y):
        return coordinate_sum((y - self.center) ** 2) >= self.radius**2

    def crossing_probability(self, y_start, y_end, normal_variance_fn, dt):
        offset = y_start - self.center
        norm = jnp.sqrt(coordinate_sum(offset**2))
        normal = offset / jnp.maximum(norm, jnp.finfo(y_start.dtype).tiny)
        distance_end = self.radius - jnp.sqrt(coordinate_sum((y_end - self.center) ** 2))
        return _bridge_crossing(self.radius - norm, distance_end, normal, normal_variance_fn, dt)


class LossAbove(AbstractLevelCriterion):
    """Escaped once L(y) >= threshold (Mori et al.'s criterion, docs/THEORY.md §3.5).

    The level function is the landscape's loss, its gradient the landscape's `gradient`.
    """

    landscape: AbstractLandscape
    threshold: jax.Array = eqx.field(converter=float_array)

    def level(self, y):
        return self.landscape.loss(y)

    def level_gradient(self, y):
        return self.landscape.gradient(y)


class Predicate(AbstractEscapeCriterion):
    """Escaped once `predicate(y, parameters)` is True (any user JAX function)."""

    predicate: Callable = eqx.field(static=True)
    parameters: object = None

    def is_outside(self, y):
        return jnp.asarray(self.predicate(y, self.parameters), bool)


class NeverEscape(AbstractEscapeCriterion):
    """Never escapes: for stationary-distribution runs that stop at max_steps."""

    def is_outside(self, y):
        return jnp.zeros((), bool)


def past_saddle(landscape: AbstractLandscape, distance=None) -> HalfSpace:
    """Hyperplane normal to the escape direction, `distance` beyond the saddle.

    The default distance is half the minimum–saddle distance. Kramers' 2π prefactor needs the
    absorbing plane well past the barrier top; exactly at it the time halves (docs/THEORY.md §1.5).
    """
    direction = landscape.escape_direction()
    saddle = landscape.saddle()
    if distance is None:
        distance = 0.5 * jnp.linalg.norm(saddle - landscape.minimum())
    return HalfSpace(direction, jnp.dot(direction, saddle) + distance)
