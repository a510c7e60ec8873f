r"""The particle protocol: what the driver and splitting need of any particle process.

A particle process moves one particle (no batch axis) by one step: an SDE discretised by
Euler–Maruyama (`_dynamics`), or one minibatch-SGD iteration (`_sgd`). The driver
(`_engine`) and splitting (`_splitting`) batch `step` with `vmap` and never ask which kind of
process they hold. A particle's randomness at its n-th step is a pure function of
(key, identity, n) (`_noise.py`), which is what makes every result independent of chunking,
pool size and device count.

The statuses and the rule that combines the criteria's crossing probabilities live here too, so
that `simulate` and splitting share them.
"""

import abc
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from ._fused import coordinate_all


# Slot and particle statuses; an escape through criterion k has status ESCAPED + k.
RUNNING, CENSORED, DIVERGED, EMPTY, ESCAPED = 0, 1, 2, 3, 4
# Splitting's paths also end by returning to the set A, and its loop particles after their loops.
RETURNED, LOOPS_DONE = -1, -2

NOISE_KINDS = ("gaussian", "rademacher")
# The noise counter of a particle's random start (steps count from 0 to max_steps < 2^31).
START_COUNTER = 2**32 - 1


class StepOptions(NamedTuple):
    """Static choices of a step (hashable: part of the compiled kernel's identity).

    **Arguments:**

    - `crossing_correction`: sample the continuous path's crossings of the criteria between two
      steps (SDEs only; a discrete-time process has no path between its iterates).
    - `noise`: the SDE increments, "gaussian" or "rademacher" (±1, weak order 1).
    """

    crossing_correction: bool = True
    noise: str = "gaussian"


class AbstractParticleProcess(eqx.Module):
    """One particle's stochastic process, stepped by the driver and by splitting.

    Subclasses implement `check_parameters`, `check_start`, `num_streams` and `step`; the state
    defaults to the position itself (`initial_state`, `position`).
    """

    # Steps per iteration of the driver's inner loop (a loop iteration copies the pool's
    # arrays once; processes whose step is expensive to copy around take two).
    steps_per_iteration: ClassVar[int] = 1
    # The time step when the caller gives none; None: the caller must give one.
    default_dt: ClassVar[float | None] = None

    @abc.abstractmethod
    def check_parameters(self) -> None:
        """Raise an error naming any out-of-range hyperparameter (called before compiling)."""

    @abc.abstractmethod
    def check_start(self, position: jax.Array) -> None:
        """Raise an error naming the problem if the process cannot start at `position`."""

    @abc.abstractmethod
    def num_streams(self, dim: int, dtype) -> int:
        """Threefry hashes per step (each gives two 32-bit words) for a particle of `dim`."""

    @abc.abstractmethod
    def step(self, state, keys: jax.Array, identity: jax.Array, step: jax.Array, dt: jax.Array,
             criteria: tuple, options: StepOptions, running: jax.Array | None = None):
        """One step of one particle, with its escape tests.

        **Arguments:**

        - `state`: the particle's state (`initial_state` of its start).
        - `keys`: the run's raw stream keys, shape (num_streams, 2) (`_noise.stream_keys`).
        - `identity`: the particle's noise identity (uint32): its global index in `simulate`.
        - `step`: the number of steps it has taken (int32); its noise counter.
        - `dt`: the time step; `criteria`: the escape criteria; `options`: `StepOptions`.
        - `running`: a boolean scalar, or None. A particle that is not running must come back
          with its state unchanged (`keep_running`).

        **Returns:** `(new_state, outside, finite)`: `outside[k]` is True when the particle has
        left through criterion k during this step (crossings between the iterates included, at
        most one credited per step, see `credit_crossing`); `finite` is False when the new
        state is not finite (the particle diverged; `all_finite`). Where the selection of the
        kept state and the finiteness test go is the process's choice: it changes what XLA
        fuses, not the numbers.
        """

    def initial_state(self, position: jax.Array):
        """The state of a particle starting at `position`."""
        return position

    def position(self, state) -> jax.Array:
        """The position (shape (dim,)) that the escape criteria test."""
        return state

    @property
    def random_start(self) -> bool:
        """Whether each particle starts in a state of its own (`start_state`)."""
        return False

    def start_state(self, state, keys: jax.Array, identity: jax.Array):
        """The start of particle `identity` when `random_start`: a pure function of (key,
        identity), drawn from the counter-based noise at the counter `START_COUNTER`, which
        no step reaches. `state` is the common `initial_state`. The common state by default."""
        return state

    def splitting_process(self, position: jax.Array) -> "AbstractParticleProcess":
        """The process that splitting runs: its state must be one flat vector per particle that
        a clone can continue (a Markov chain). The process itself by default."""
        return self

    def linearised_covariance(self, position: jax.Array):
        """Covariance of the stationary law of the process linearised at `position`, or None
        where it has no drift and diffusion to linearise (splitting then measures the law in
        the well by direct runs)."""
        return None

    def step_block(self, dim: int) -> int | None:
        """Slots stepped as one batch, block after block (`default_step_block(dim)` for a
        particle of `dim` coordinates), or None: the whole pool as one batch.

        XLA picks a batched contraction's algorithm by its shape (a network's minibatch, a
        full-data loss, a matrix noise), so such a step rounds differently at different batch
        sizes, and a particle's numbers would depend on the pool's size (the chunk size, the
        device count, the tail's shrinks; measured: tests/test_pool_invariance.py). Stepped
        in blocks of a fixed size, every particle is computed by the same compiled code. None
        where the step is elementwise over the batch (an SDE on an analytic landscape)."""
        return default_step_block(dim)

    def cpu_pool_size(self, dim: int) -> int:
        """Working slots on a CPU: about 2^16 coordinates (`coordinate_pool_size`)."""
        return coordinate_pool_size(dim)


def credit_crossing(outside: list, probabilities: list | None, uniform) -> list:
    r"""Adds the crossings of the continuous path between two steps to the escape tests.

    The path crossed some criterion with probability $1 - \prod_k (1 - p_k)$ (independent
    crossings; exactly $p$ for one criterion), sampled with the particle's `uniform`, and the
    crossing is credited to the criterion with the largest $p_k$.
    """
    if probabilities is None:
        return list(outside)
    if len(probabilities) == 1:
        return [outside[0] | (uniform < probabilities[0])]
    stacked = jnp.stack(probabilities)
    no_crossing = jnp.prod(1 - stacked)
    credited = jnp.arange(len(probabilities)) == jnp.argmax(stacked)
    credited = credited & (uniform < 1 - no_crossing)
    return [each | crossed for each, crossed in zip(outside, credited)]


def all_finite(state) -> jax.Array:
    """True when every entry of every leaf of `state` is finite."""
    finite = [coordinate_all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(state)]
    return coordinate_all(jnp.stack(finite))


def keep_running(running, new_state, state):
    """The new state for a running particle, the old one otherwise."""
    return jax.tree.map(lambda new, old: jnp.where(running, new, old), new_state, state)


MINIMUM_BATCH = 8  # no pool is smaller: a batch of 1 is compiled as scalar code, which rounds
# differently from the vectorised code of 8 and more slots (measured for 1-D Langevin)
STEP_BLOCK_CPU = 256  # a CPU's block for particles of up to 2^11 coordinates (a 10-parameter
# linear model and small networks alike: benchmarks/README.md §10)
CPU_BLOCK_COORDINATES = 2**19  # a CPU block of larger particles holds at most about this many
# coordinates (2 MiB of float32 parameters), so that a block's networks stay in cache through
# their forward and backward passes (benchmarks/README.md §10, "Blocks that fit the cache")
ACCELERATOR_BLOCK_COORDINATES = 2**24  # an accelerator's block: about this many coordinates,
ACCELERATOR_BLOCK_RANGE = (2**10, 2**18)  # within this range of slots (benchmarks/README.md §8)


def default_step_block(dim: int) -> int:
    """The block of `AbstractParticleProcess.step_block` for a particle of `dim` coordinates on
    the default backend: on a CPU `STEP_BLOCK_CPU`, or fewer slots (a power of two, at least
    `MINIMUM_BATCH`) holding about `CPU_BLOCK_COORDINATES` coordinates where the particle has
    more than 2^11 (the digits MLP's 2410 parameters: 128, the mori MLP's 17 610: 16); on an
    accelerator about `ACCELERATOR_BLOCK_COORDINATES` coordinates' worth of slots (a power of
    two), within `ACCELERATOR_BLOCK_RANGE` (the digits MLP: 2^12, the mori MLP: 2^10, a
    10-parameter model: 2^18). A pool is at least one block, so a run of fewer particles than a
    block steps empty slots: the block is about the smallest batch that keeps a GPU busy
    (benchmarks/README.md §8), not more; smaller blocks of cheap particles leave it idle
    between launches."""
    if jax.default_backend() == "cpu":
        fitting = previous_power_of_two(max(1, CPU_BLOCK_COORDINATES // max(1, dim)))
        return min(STEP_BLOCK_CPU, max(MINIMUM_BATCH, fitting))
    low, high = ACCELERATOR_BLOCK_RANGE
    return min(high, max(low, previous_power_of_two(ACCELERATOR_BLOCK_COORDINATES // max(1, dim))))


def batch_floor(process, dim: int) -> int:
    """The smallest pool of `process` (particles of `dim` coordinates): `MINIMUM_BATCH` slots,
    or its step block."""
    return max(MINIMUM_BATCH, process.step_block(dim) or 1)


def coordinate_pool_size(dim: int) -> int:
    """About 2^16 coordinates' worth of slots (at least 2^10): the CPU pool of a process whose
    state is its position (measured: benchmarks/README.md §2)."""
    return max(2**10, 2**16 // previous_power_of_two(dim))


def previous_power_of_two(n: int) -> int:
    return 1 << max(0, int(n).bit_length() - 1)


def next_power_of_two(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())
