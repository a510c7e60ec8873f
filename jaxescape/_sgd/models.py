r"""Models as per-sample losses $\ell(\theta; x, y)$ of a flat parameter vector θ.

The training loss is $L(\theta) = \frac1n\sum_\mu \ell(\theta; x_\mu, y_\mu)$ (docs/THEORY.md §1.1).
Parameters are flat vectors so that SGD particles share the engine's escape criteria; a model
with structured parameters (an `eqx.nn.MLP`) unravels them inside its loss.
"""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .data import Dataset
from .._landscapes import AbstractLandscape
from .._defaults import renamed_keywords
from .._arrays import float_array


class AbstractModel(eqx.Module):
    """A per-sample loss of a flat parameter vector of length `num_parameters`."""

    @abc.abstractmethod
    def per_sample_loss(self, parameters: jax.Array, input: jax.Array, target: jax.Array):
        """ℓ(θ; x, y), a scalar, for one sample (no batch axis)."""

    @property
    @abc.abstractmethod
    def num_parameters(self) -> int:
        """Length of the flat parameter vector θ."""

    def parameter_tree(self, parameters: jax.Array):
        """θ in the form SGD steps it: the flat vector itself here; a model with structured
        parameters (`NetworkModel`) returns their pytree, whose arrays SGD then updates in
        place of slicing θ into them and joining the gradient back every step."""
        return parameters

    def per_sample_losses(self, parameters: jax.Array, data: Dataset) -> jax.Array:
        """(ℓ(θ; x_μ, y_μ))_μ, shape (n,)."""
        return jax.vmap(self.per_sample_loss, (None, 0, 0))(parameters, data.inputs, data.targets)

    def loss(self, parameters: jax.Array, data: Dataset) -> jax.Array:
        """L(θ) = mean_μ ℓ(θ; x_μ, y_μ)."""
        return jnp.mean(self.per_sample_losses(parameters, data))

    def check_data(self, data: Dataset) -> None:
        """Errors naming the problem when `data` does not fit the model (before compiling); a
        model with structured outputs (`NetworkModel`) checks shapes and class labels."""


class LinearRegression(AbstractModel):
    r"""$\ell = \frac12(\theta \cdot x - y)^2$, θ ∈ R^d (Mori et al.; Wu et al. when d > n)."""

    dim: int = eqx.field(static=True)

    @renamed_keywords(dimension="dim")
    def __init__(self, dim: int):
        self.dim = dim

    def per_sample_loss(self, parameters, input, target):
        return 0.5 * (jnp.dot(parameters, input) - target) ** 2

    @property
    def num_parameters(self):
        return self.dim

    @property
    def dimension(self) -> int:
        """The earlier name of `dim`."""
        return self.dim


class MengDoubleWell(AbstractModel):
    r"""Meng et al.'s 1-D landscape from least squares, with the barrier set by a shift a.

    With $\ell_\mu(v) = (v x_\mu - y_\mu)^2$: $\ell_\mu(w - a)$ reflected,
    $L_\mu(w) = \ell_\mu(-w - a) - \ell_\mu(-a)$ for $w < 0$ and
    $-\ell_\mu(w - a) + \ell_\mu(-a)$ for $w \ge 0$ (docs/THEORY.md §4.5, the mean instead of the
    sum). The minimum sits at $w = -a - v^*$ and the barrier top at $a + v^*$, with
    $v^* = \overline{xy}/\overline{x^2}$; the barrier is $2\,\overline{x^2}(a + v^*)^2$ and the
    curvatures $\pm 2\overline{x^2}$ do not depend on a.
    """

    shift: jax.Array = eqx.field(converter=float_array)

    def per_sample_loss(self, parameters, input, target):
        w = parameters[0]

        def base(v):
            return (v * input - target) ** 2

        reference = base(-self.shift)
        return jnp.where(w < 0, base(-w - self.shift) - reference, reference - base(w - self.shift))

    @property
    def num_parameters(self):
        return 1


def meng_shift_for_barrier(data: Dataset, barrier) -> jax.Array:
    """The shift a that gives `MengDoubleWell` the barrier ΔL = 2·mean(x²)·(a + v*)²."""
    second_moment = jnp.mean(data.inputs**2)
    optimum = jnp.mean(data.inputs * data.targets) / second_moment
    return jnp.sqrt(jnp.asarray(barrier) / (2 * second_moment)) - optimum


class MinimumOfQuadratics(AbstractModel):
    r"""$\ell(x; c) = \min(x^2,\ c\,(x - 1)^2)$ with the sample's input c (target unused).

    Wu, Ma & E's toy example (docs/THEORY.md §5.4): c = 0.1 and 1.9 give minima at x = 0
    (h = 2 for both samples, stable) and x = 1 (h = 0.2 and 3.8: a = 2, s = 1.8).
    """

    def per_sample_loss(self, parameters, input, target):
        x = parameters[0]
        return jnp.minimum(x**2, input * (x - 1) ** 2)

    @property
    def num_parameters(self):
        return 1


class MLPRegression(AbstractModel):
    r"""A small multilayer perceptron (`eqx.nn.MLP`) with the squared error $\frac12|f(x) - y|^2$.

    The network's arrays are raveled into θ (`initial_parameters` is the initialisation); the
    rest of the network (layer structure, activations) is static.
    """

    initial_parameters: jax.Array
    structure: eqx.nn.MLP = eqx.field(static=True)  # the network with its arrays removed
    unravel: Callable = eqx.field(static=True)

    def __init__(self, key, in_size: int, out_size: int, width: int, depth: int):
        network = eqx.nn.MLP(in_size, out_size, width, depth, key=key)
        arrays, self.structure = eqx.partition(network, eqx.is_array)
        self.initial_parameters, self.unravel = ravel_pytree(arrays)

    def network(self, parameters: jax.Array) -> eqx.nn.MLP:
        return eqx.combine(self.unravel(parameters), self.structure)

    def per_sample_loss(self, parameters, input, target):
        prediction = self.network(parameters)(jnp.atleast_1d(input))
        return 0.5 * jnp.sum((prediction - jnp.atleast_1d(target)) ** 2)

    @property
    def num_parameters(self):
        return self.initial_parameters.shape[0]


class TrainingLoss(AbstractLandscape):
    """The full-data training loss L(θ) of a model as a landscape (for `LossAbove` criteria)."""

    model: AbstractModel
    data: Dataset

    @property
    def dim(self) -> int:
        return self.model.num_parameters

    @property
    def batch_invariant(self) -> bool:
        return False  # a sum over the data set

    def loss(self, y):
        return self.model.loss(y, self.data)
