"""Reaction coordinates ξ for adaptive multilevel splitting (`estimator.py`; Cérou, Guyader,
Lelièvre & Pommier 2011): scalars that grow from the start towards the escape set. The default
follows the criterion: the distance along a `HalfSpace` normal, the loss increase for `LossAbove`,
the distance from an `OutsideBall`'s center, else the distance along the landscape's escape
direction. They are modules: their arrays are traced, so a new temperature or a new plane does
not recompile.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from .._criteria import HalfSpace, LossAbove, OutsideBall


class Projection(eqx.Module):
    """ξ(y) = normal · (y − origin): distance along a direction (e.g. a HalfSpace normal)."""

    normal: jax.Array
    origin: jax.Array

    def __call__(self, y):
        return jnp.sum(self.normal * (y - self.origin))


class LossIncrease(eqx.Module):
    """ξ(y) = L(y) − L(reference point)."""

    landscape: object
    reference: jax.Array

    def __call__(self, y):
        return self.landscape.loss(y) - self.reference


class DistanceFrom(eqx.Module):
    """ξ(y) = |y − center|."""

    center: jax.Array

    def __call__(self, y):
        return jnp.sqrt(jnp.sum((y - self.center) ** 2))


def default_reaction_coordinate(dynamics, criteria, initial_position):
    """(ξ, level of ξ at which the escape set is entered, or None) for the given criteria.

    One `HalfSpace`: the distance along its normal from the start (B = {ξ ≥ offset − n·x0}).
    One `LossAbove`: the loss increase over the start. One `OutsideBall`: the distance from its
    center. Otherwise, the distance along the landscape's escape direction (the level at which B
    is entered is then unknown: pass `max_level`).
    """
    x0 = initial_position
    dtype = x0.dtype
    if len(criteria) == 1:
        (criterion,) = criteria
        if isinstance(criterion, HalfSpace):
            normal = jnp.broadcast_to(jnp.asarray(criterion.normal, dtype), x0.shape)
            return Projection(normal, x0), float(criterion.offset - jnp.sum(normal * x0))
        if isinstance(criterion, LossAbove):
            reference = criterion.landscape.loss(x0)
            return LossIncrease(criterion.landscape, reference), float(
                criterion.threshold - reference
            )
        if isinstance(criterion, OutsideBall):
            center = jnp.broadcast_to(jnp.asarray(criterion.center, dtype), x0.shape)
            return DistanceFrom(center), float(criterion.radius)
    landscape = getattr(dynamics, "landscape", None)
    try:
        direction = landscape.escape_direction()
    except (AttributeError, NotImplementedError):
        raise ValueError(
            "no default reaction coordinate for criteria "
            f"{[type(c).__name__ for c in criteria]} and a dynamics without a landscape that "
            "knows its saddle: pass reaction_coordinate (a function of one position y of shape "
            "(dim,) returning a scalar that grows towards the escape set) and max_level"
        ) from None
    return Projection(jnp.asarray(direction, dtype), x0), None


@eqx.filter_jit
def evaluate_coordinate(function, points):
    """ξ at each of a batch of points."""
    return jax.vmap(function)(points)
