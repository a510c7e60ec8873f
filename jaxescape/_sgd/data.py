r"""Finite training sets held on the device, generated from a key (nothing is downloaded).

A `Dataset` is n input–target pairs; SGD particles draw their minibatches from it.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr

from .._defaults import renamed_keywords


class Dataset(eqx.Module):
    """n samples: `inputs` of shape (n, ...) and `targets` of shape (n, ...), floating point."""

    inputs: jax.Array
    targets: jax.Array

    def __check_init__(self):
        for name in ("inputs", "targets"):
            value = getattr(self, name)
            if not isinstance(value, jax.Array | jax.ShapeDtypeStruct) or value.ndim < 1:
                raise ValueError(f"{name} must be an array with a leading sample axis")
            if not jnp.issubdtype(value.dtype, jnp.floating):
                raise TypeError(f"{name} must be floating point, got dtype {value.dtype}")
        if self.inputs.shape[0] == 0:
            raise ValueError("the data set is empty: inputs has 0 samples (need n >= 1)")
        if self.inputs.shape[0] != self.targets.shape[0]:
            raise ValueError(
                f"inputs and targets must have the same number of samples, got "
                f"{self.inputs.shape[0]} and {self.targets.shape[0]}"
            )
        if self.inputs.dtype != self.targets.dtype:
            raise TypeError(
                f"inputs and targets must share a dtype, got {self.inputs.dtype} and "
                f"{self.targets.dtype}"
            )

    @property
    def num_samples(self) -> int:
        return self.inputs.shape[0]


@renamed_keywords(dimension="dim")
def gaussian_regression_data(key: jax.Array, num_samples: int, dim: int) -> Dataset:
    r"""Mori's linear-regression data: $x \in \mathbb R^d$ and $y$ all i.i.d. N(0, 1).

    With $d \ll n$ the least-squares minimum has residual loss $L^* \approx 1/2$ and Hessian
    eigenvalues ≈ 1 (docs/THEORY.md §3.5).
    """
    input_key, target_key = jr.split(key)
    return Dataset(
        jr.normal(input_key, (num_samples, dim)), jr.normal(target_key, (num_samples,))
    )


@renamed_keywords(dimension="dim")
def interpolation_data(key: jax.Array, num_samples: int, dim: int) -> Dataset:
    r"""Realisable regression: $y = x \cdot \theta_{\rm teacher}$ exactly, so $L^* = 0$.

    With dim > num_samples the model is over-parameterised and every minimum interpolates
    (Wu, Ma & E's setting, docs/THEORY.md §5.1).
    """
    input_key, teacher_key = jr.split(key)
    inputs = jr.normal(input_key, (num_samples, dim))
    teacher = jr.normal(teacher_key, (dim,)) / jnp.sqrt(dim)
    return Dataset(inputs, inputs @ teacher)


def meng_data(key: jax.Array, num_samples: int = 500) -> Dataset:
    """The samples of Meng et al.'s 1-D experiment: x_i, y_i i.i.d. N(0, 1), n = 500 (§4.5)."""
    input_key, target_key = jr.split(key)
    return Dataset(jr.normal(input_key, (num_samples,)), jr.normal(target_key, (num_samples,)))
