r"""Dynamics: Itô SDEs $dy = f(t, y)\,dt + g(t, y)\,dW$ for one particle y of shape (dim,).

`noise_kind()` says how the diffusion acts: "diagonal" (g has shape (dim,), multiplied
elementwise with dW of shape (dim,)) or "matrix" (g has shape (dim, noise_dim), multiplied
with dW of shape (noise_dim,)). Time t is the SDE time; for SGD-derived dynamics
t = η·iterations (docs/THEORY.md §1.2).
"""

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from .. import _noise
from .._defaults import renamed_keywords
from .._landscapes import AbstractLandscape
from .._particle import (
    AbstractParticleProcess,
    StepOptions,
    all_finite,
    credit_crossing,
    default_step_block,
    keep_running,
)
from .euler_maruyama import escape_step
from .._arrays import float_array


# Up to this dimension the step selects the kept position before the escape tests, so that XLA's
# CPU backend reads the written position back instead of recomputing the step for the tests;
# above it XLA fuses the wider step worse that way (measured: benchmarks/README.md §1).
SELECT_FIRST_MAX_DIM = 1


class AbstractDynamics(AbstractParticleProcess):
    """An Itô SDE dy = drift(t, y) dt + diffusion(t, y) dW, stepped by Euler–Maruyama.

    The particle state is the position; a step draws `noise_dim` normals and one uniform (for
    the Brownian-bridge crossings) from the particle's counter-based noise.
    """

    @abc.abstractmethod
    def drift(self, t: jax.Array, y: jax.Array) -> jax.Array:
        """f(t, y), shape (dim,)."""

    @abc.abstractmethod
    def diffusion(self, t: jax.Array, y: jax.Array) -> jax.Array:
        """g(t, y): shape (dim,) for diagonal noise, (dim, noise_dim) for matrix noise."""

    def diffusion_operator(self, t: jax.Array, y: jax.Array):
        """g(t, y) as the Euler–Maruyama step uses it: `g @ normals` and, for matrix noise, the
        crossing corrections' `v @ g`. The array `diffusion(t, y)` unless a dynamics has a
        cheaper operator that never forms g (`MinibatchNoiseSDE(per_sample_noise=True)`)."""
        return self.diffusion(t, y)

    def fused_increment(self, t: jax.Array, y: jax.Array, dt: jax.Array, normals: jax.Array):
        """(f dt + g √dt ξ, the operator g) computed together, where a dynamics can do that
        more cheaply than f and g ξ apart (one reverse pass instead of two:
        `MinibatchNoiseSDE(per_sample_noise=True)`); None (the default): the step computes
        them apart."""
        return None

    def noise_kind(self) -> str:
        """"diagonal" or "matrix"."""
        return "diagonal"

    def step_block(self, dim: int) -> int | None:
        """None (the whole pool as one batch) on a batch-invariant landscape with diagonal
        noise, or matrix noise in one dimension; else blocks (`AbstractParticleProcess`)."""
        landscape = getattr(self, "landscape", None)
        if landscape is not None and landscape.batch_invariant and (
                self.noise_kind() != "matrix" or landscape.dim == 1):
            return None
        return default_step_block(dim)

    def noise_dim(self, dim: int) -> int:
        """Number of independent Brownian motions driving a particle of dimension `dim`."""
        return dim

    def loss(self, y: jax.Array) -> jax.Array:
        """The landscape's loss, where the dynamics has one (used by loss-based criteria)."""
        raise NotImplementedError(f"{type(self).__name__} has no landscape")

    def check_parameters(self) -> None:
        """Raise ValueError for out-of-range hyperparameters (called before compiling)."""

    def check_start(self, position: jax.Array) -> None:
        """The loss, drift and diffusion are finite and of the right shapes at the start."""
        _check_start(self, position)

    def num_streams(self, dim: int, dtype) -> int:
        """The normals and one bridge uniform per step."""
        return _noise.num_streams(self.noise_dim(dim) + 1, dtype)

    def step(self, state, keys, identity, step, dt, criteria, options=StepOptions(),
             running=None):
        """One Euler–Maruyama step at t = step·dt with the escape tests and, with
        `options.crossing_correction`, the Brownian-bridge crossings (`credit_crossing`)."""
        time = step.astype(state.dtype) * dt
        # With `running`, a finished particle keeps its position. In low dimensions it is
        # selected before the tests, which then read the position the step writes out.
        select_first = running is not None and state.shape[0] <= SELECT_FIRST_MAX_DIM
        new_state, outside, probabilities, uniform = escape_step(
            self, criteria, keys, identity, step, time, state, dt, options.crossing_correction,
            options.noise, running=running if select_first else None,
        )
        outside = credit_crossing(outside, probabilities, uniform)
        finite = all_finite(new_state)  # in higher dimensions, of the position before the
        if running is not None and not select_first:  # selection: XLA fuses it better
            new_state = keep_running(running, new_state, state)
        return new_state, outside, finite

    def linearised_covariance(self, position: jax.Array) -> np.ndarray:
        """Covariance C of the stationary law of the SDE linearised at `position` (an
        Ornstein–Uhlenbeck process): J C + C Jᵀ + g gᵀ = 0 with J the drift's Jacobian."""
        jacobian, diffusion = _linearise(self, position)
        jacobian, diffusion = np.asarray(jacobian, np.float64), np.asarray(diffusion, np.float64)
        if self.noise_kind() == "diagonal":
            diffusion = np.diag(diffusion)
        eigenvalues = np.linalg.eigvals(jacobian)
        if not np.all(np.isfinite(eigenvalues)) or np.any(eigenvalues.real >= 0):
            raise ValueError(
                "cannot choose default levels: the drift is not stable at initial_position "
                f"(Jacobian eigenvalues {eigenvalues}); start at a minimum or pass a_level, "
                "sigma_level and num_levels"
            )
        covariance = scipy.linalg.solve_continuous_lyapunov(jacobian, -diffusion @ diffusion.T)
        return 0.5 * (covariance + covariance.T)


@eqx.filter_jit
def _linearise(dynamics, position):
    zero = jnp.zeros((), position.dtype)
    return (jax.jacfwd(lambda y: dynamics.drift(zero, y))(position),
            dynamics.diffusion(zero, position))


def _check_start(dynamics, position):
    landscape = getattr(dynamics, "landscape", None)
    if landscape is not None and landscape.dim != position.shape[0]:
        raise ValueError(
            f"initial_position has shape {position.shape} but the landscape has dim "
            f"{landscape.dim}: expected shape ({landscape.dim},)"
        )
    time = jnp.zeros((), position.dtype)
    if landscape is not None:
        loss = landscape.loss(position)
        if not bool(jnp.isfinite(loss)):
            raise ValueError(
                f"the landscape's loss is {float(loss)} at initial_position {np.asarray(position)}:"
                " it must be finite at the start"
            )
    drift = jnp.asarray(dynamics.drift(time, position))
    if drift.shape != position.shape:
        raise ValueError(
            f"the drift returns shape {drift.shape} for initial_position of shape "
            f"{position.shape}: they must match"
        )
    diffusion = jnp.asarray(dynamics.diffusion(time, position))
    dim, noise_dim = position.shape[0], dynamics.noise_dim(position.shape[0])
    expected = (dim,) if dynamics.noise_kind() == "diagonal" else (dim, noise_dim)
    if diffusion.shape != expected:
        raise ValueError(
            f"the diffusion returns shape {diffusion.shape}; {dynamics.noise_kind()} noise for "
            f"dim {dim} needs shape {expected}"
        )
    for name, value in (("drift", drift), ("diffusion", diffusion)):
        if not bool(jnp.all(jnp.isfinite(value))):
            raise ValueError(f"the {name} is not finite at initial_position: {np.asarray(value)}")


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

    Stationary law Gibbs $\propto e^{-L/T}$ (docs/THEORY.md §1.2, Mori eq. 5). `temperature` is the
    constant diffusion coefficient D = T > 0.
    """

    landscape: AbstractLandscape
    temperature: jax.Array = eqx.field(converter=float_array)

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

    With `noise_type="diagonal"` the diffusion returns shape (dim,); with `noise_type="matrix"`
    it returns (dim, noise_dim). `parameters` is a pytree of arrays (swept without
    recompiling); `landscape` is optional and only needed for loss-based escape criteria.
    `noise_dimension=` is the earlier name of `noise_dim=`.
    """

    drift_function: Callable = eqx.field(static=True)
    diffusion_function: Callable = eqx.field(static=True)
    parameters: object = None
    noise_type: str = eqx.field(static=True, default="diagonal")
    noise_dimension: int | None = eqx.field(static=True, default=None)
    landscape: AbstractLandscape | None = None

    @renamed_keywords(noise_dim="noise_dimension")
    def __init__(self, drift_function, diffusion_function, parameters=None,
                 noise_type="diagonal", noise_dimension=None, landscape=None):
        self.drift_function = drift_function
        self.diffusion_function = diffusion_function
        self.parameters = parameters
        self.noise_type = noise_type
        self.noise_dimension = noise_dimension
        self.landscape = landscape

    def __check_init__(self):
        if self.noise_type not in ("diagonal", "matrix"):
            raise ValueError(f"noise_type must be 'diagonal' or 'matrix', got {self.noise_type!r}")

    def noise_kind(self):
        return self.noise_type

    def step_block(self, dim: int) -> int | None:
        return default_step_block(dim)  # user functions may contract

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
