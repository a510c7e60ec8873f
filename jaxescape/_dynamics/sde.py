r"""Dynamics: Itô SDEs $dy = f(t, y)\,dt + g(t, y)\,dW$ for one particle y of shape (dim,).

`noise_kind()` says how the diffusion acts: "diagonal" (g has shape (dim,), multiplied
elementwise with dW of shape (dim,)) or "matrix" (g has shape (dim, noise_dim), multiplied
with dW of shape (noise_dim,)). Time t is the SDE time; for SGD-derived dynamics
t = η·iterations (THEORY.md §1.2).
"""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from .._landscapes import AbstractLandscape


def _array(value):
    return jnp.asarray(value, dtype=jnp.result_type(float))


class AbstractDynamics(eqx.Module):
    """An Itô SDE dy = drift(t, y) dt + diffusion(t, y) dW."""

    @abc.abstractmethod
    def drift(self, t: jax.Array, y: jax.Array) -> jax.Array:
        """f(t, y), shape (dim,)."""

    @abc.abstractmethod
    def diffusion(self, t: jax.Array, y: jax.Array) -> jax.Array:
        """g(t, y): shape (dim,) for diagonal noise, (dim, noise_dim) for matrix noise."""

    def noise_kind(self) -> str:
        """"diagonal" or "matrix"."""
        return "diagonal"

    def noise_dim(self, dim: int) -> int:
        """Number of independent Brownian motions driving a particle of dimension `dim`."""
        return dim

    def loss(self, y: jax.Array) -> jax.Array:
        """The landscape's loss, where the dynamics has one (used by loss-based criteria)."""
        raise NotImplementedError(f"{type(self).__name__} has no landscape")

    def check_parameters(self) -> None:
        """Raise ValueError for out-of-range hyperparameters (called before compiling)."""


def _check_positive(name: str, value) -> None:
    try:
        concrete = jnp.asarray(value)
        bad = bool(jnp.any(~jnp.isfinite(concrete)) | jnp.any(concrete <= 0))
    except jax.errors.ConcretizationTypeError:
        return  # traced inside a user's transformation: cannot check eagerly
    if bad:
        raise ValueError(f"{name} must be positive and finite, got {value}")


class OverdampedLangevin(AbstractDynamics):
    r"""Gradient descent with white noise: $dy = -\nabla L(y)\,dt + \sqrt{2T}\,dW$.

    Stationary law Gibbs $\propto e^{-L/T}$ (THEORY.md §1.2, Mori eq. 5). `temperature` is the
    constant diffusion coefficient D = T > 0.
    """

    landscape: AbstractLandscape
    temperature: jax.Array = eqx.field(converter=_array)

    def drift(self, t, y):
        return -self.landscape.gradient(y)

    def diffusion(self, t, y):
        return jnp.broadcast_to(jnp.sqrt(2 * self.temperature).astype(y.dtype), y.shape)

    def loss(self, y):
        return self.landscape.loss(y)

    def check_parameters(self):
        _check_positive("temperature", self.temperature)


class GeneralSDE(AbstractDynamics):
    """A user SDE: `drift_function(t, y, parameters)` and `diffusion_function(t, y, parameters)`.

    With `noise="diagonal"` the diffusion returns shape (dim,); with `noise="matrix"` it returns
    (dim, noise_dimension). `parameters` is a pytree of arrays (swept without recompiling);
    `landscape` is optional and only needed for loss-based escape criteria.
    """

    drift_function: Callable = eqx.field(static=True)
    diffusion_function: Callable = eqx.field(static=True)
    parameters: object = None
    noise_type: str = eqx.field(static=True, default="diagonal")
    noise_dimension: int | None = eqx.field(static=True, default=None)
    landscape: AbstractLandscape | None = None

    def __check_init__(self):
        if self.noise_type not in ("diagonal", "matrix"):
            raise ValueError(f"noise_type must be 'diagonal' or 'matrix', got {self.noise_type!r}")

    def noise_kind(self):
        return self.noise_type

    def noise_dim(self, dim):
        if self.noise_type == "diagonal" or self.noise_dimension is None:
            return dim
        return self.noise_dimension

    def drift(self, t, y):
        return self.drift_function(t, y, self.parameters)

    def diffusion(self, t, y):
        return self.diffusion_function(t, y, self.parameters)

    def loss(self, y):
        if self.landscape is None:
            return super().loss(y)
        return self.landscape.loss(y)
