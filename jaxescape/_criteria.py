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
"""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from ._fused import coordinate_sum, dot
from ._landscapes import AbstractLandscape


def _array(value):
    return jnp.asarray(value, dtype=jnp.result_type(float))


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

    normal: jax.Array = eqx.field(converter=_array)
    offset: jax.Array = eqx.field(converter=_array)

    def is_outside(self, y):
        return dot(self.normal, y) >= self.offset

    def crossing_probability(self, y_start, y_end, normal_variance_fn, dt):
        distance_start = self.offset - dot(self.normal, y_start)
        distance_end = self.offset - dot(self.normal, y_end)
        variance = normal_variance_fn(self.normal) * dt
        exponent = -2 * distance_start * distance_end / jnp.maximum(variance, 1e-300)
        return jnp.exp(jnp.minimum(exponent, 0.0))


class OutsideBall(AbstractEscapeCriterion):
    """Escaped once |y − center| >= radius."""

    center: jax.Array = eqx.field(converter=_array)
    radius: jax.Array = eqx.field(converter=_array)

    def is_outside(self, y):
        return coordinate_sum((y - self.center) ** 2) >= self.radius**2


class LossAbove(AbstractEscapeCriterion):
    """Escaped once L(y) >= threshold (Mori et al.'s criterion, docs/THEORY.md §3.5)."""

    landscape: AbstractLandscape
    threshold: jax.Array = eqx.field(converter=_array)

    def is_outside(self, y):
        return self.landscape.loss(y) >= self.threshold


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
