r"""Real minibatch SGD particles: each particle is one training run on a finite data set.

$\theta_{k+1} = \theta_k + {\rm update}(\nabla L_{B_k}(\theta_k))$ with
$L_{B_k} = \frac1B\sum_{\mu\in B_k}\ell_\mu$ (docs/THEORY.md §1.1) and the update of any optax
optimizer (plain SGD: $-\eta\nabla L_{B_k}$). A particle's minibatches are its own: drawn
uniformly with replacement, or without replacement in a fresh random order every epoch
(⌊n/B⌋ batches per epoch; the n mod B samples left over sit that epoch out). Its indices are a
pure function of (key, particle, step), like the SDE noise, so results do not depend on chunking.
"""

import math
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from .. import _noise
from .._particle import (
    START_COUNTER,
    AbstractParticleProcess,
    StepOptions,
    all_finite,
    keep_running,
    previous_power_of_two,
)
from .data import Dataset
from .models import AbstractModel
from .permutation import mix, permuted_index
from .._arrays import float_array


# Up to this many parameters the optimizer's normals are drawn one scalar at a time (fastest on a
# CPU, benchmarks/README.md §1); above it as one vector (`_noise.particle_normals`: the same
# values up to the last bit), so that a network's program does not grow with its size.
_UNROLLED_NORMALS = _noise.UNROLLED_VARIATES


@eqx.filter_jit
def _per_sample_losses(model, parameters, data):
    """`model.per_sample_losses` for the start check, compiled once per model and data shape:
    run op by op it dispatched every primitive anew at each `simulate` call (benchmarks/README.md
    §10)."""
    return model.per_sample_losses(parameters, data)


class MinibatchSGD(AbstractParticleProcess):
    """Minibatch training of `model` on `data` with an optax optimizer, one run per particle.

    **Arguments:**

    - `model`: the per-sample loss ℓ(θ; x, y) (θ flat, of length `model.num_parameters`).
    - `data`: the training set (n samples) on the device.
    - `batch_size`: B, between 1 and n.
    - `learning_rate`: η > 0, passed to `optimizer`. It is an array: sweeping it does not
      recompile.
    - `optimizer`: an optax optimizer factory called as `optimizer(learning_rate=η,
      **optimizer_options)` (default `optax.sgd`; also `optax.adam`, …), or a ready
      `optax.GradientTransformation` (then `learning_rate` must be None; changing it
      recompiles).
    - `optimizer_options`: numeric options of the factory (e.g. `{"momentum": 0.9}`), arrays.
    - `replacement`: draw minibatches with replacement (i.i.d.) instead of per-epoch shuffles.
    - `optimizer_noise`: pass the optimizer standard normals of θ's shape each step, as the
      extra argument `noise` (for `loss_dependent_noise`). The minibatch loss is always
      passed as `value`.
    - `initializer`: None (every particle starts at `initial_position`), or a function
      `initializer(key, initial_position) -> θ₀` giving each particle a start of its own (train
      from scratch: "which minimum does SGD find?"), e.g. a network's random initialisation.
      Particle i's key is a pure function of (the run's key, i), so the starts, like
      everything else, do not depend on chunking. `particle_start` recomputes them.
    """

    # Two steps per loop iteration halve the copies XLA makes of the pool's carried arrays
    # (measured: benchmarks/README.md §3); times are in iterations unless a dt is given.
    steps_per_iteration: ClassVar[int] = 2
    default_dt: ClassVar[float] = 1.0

    model: AbstractModel
    data: Dataset
    batch_size: int = eqx.field(static=True)
    learning_rate: jax.Array | None = eqx.field(default=None)
    optimizer: Callable | optax.GradientTransformation = eqx.field(static=True, default=optax.sgd)
    optimizer_options: dict = eqx.field(default_factory=dict)
    replacement: bool = eqx.field(static=True, default=False)
    optimizer_noise: bool = eqx.field(static=True, default=False)
    initializer: Callable | None = eqx.field(static=True, default=None)

    def __post_init__(self):
        if self.learning_rate is not None:
            self.learning_rate = float_array(self.learning_rate)
        self.optimizer_options = {
            name: float_array(value) for name, value in self.optimizer_options.items()
        }

    def transformation(self) -> optax.GradientTransformationExtraArgs:
        """The optax transformation one particle applies."""
        if isinstance(self.optimizer, optax.GradientTransformation):
            transformation = self.optimizer
        else:
            transformation = self.optimizer(
                learning_rate=self.learning_rate, **self.optimizer_options
            )
        return optax.with_extra_args_support(transformation)

    @property
    def steps_per_epoch(self) -> int:
        return self.data.num_samples // self.batch_size

    def check_parameters(self) -> None:
        """Errors naming the parameter and its allowed range (before anything compiles)."""
        n = self.data.num_samples
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int | np.integer):
            raise TypeError(f"batch_size must be an integer, got {self.batch_size!r}")
        if not 1 <= self.batch_size <= n:
            raise ValueError(
                f"batch_size must be between 1 and the data set size n = {n}, got "
                f"{self.batch_size}"
            )
        for name in ("inputs", "targets"):
            values = np.asarray(jax.device_get(getattr(self.data, name)))
            finite = np.isfinite(values).reshape(n, -1).all(axis=1)
            if not finite.all():
                raise ValueError(
                    f"data.{name} must be finite: sample {int(np.argmin(finite))} (of n = {n}) "
                    f"holds NaN or inf ({int(np.sum(~finite))} such samples)"
                )
        self.model.check_data(self.data)
        if isinstance(self.optimizer, optax.GradientTransformation):
            if self.learning_rate is not None:
                raise ValueError(
                    "learning_rate must be None when optimizer is a ready "
                    "optax.GradientTransformation (its learning rate is built in)"
                )
        elif not callable(self.optimizer):
            raise TypeError(
                f"optimizer must be an optax optimizer factory (e.g. optax.sgd) or an "
                f"optax.GradientTransformation, got {self.optimizer!r}"
            )
        elif self.learning_rate is None:
            raise ValueError("learning_rate is required with an optimizer factory: a number > 0")
        if self.learning_rate is not None:
            rate = np.asarray(self.learning_rate)
            if rate.shape != () or not np.isfinite(rate) or rate <= 0:
                raise ValueError(
                    f"learning_rate must be a positive finite scalar (> 0), got "
                    f"{self.learning_rate}"
                )

    def check_start(self, position: jax.Array) -> None:
        """The start θ₀ matches the model and data and gives finite losses (with an
        `initializer`: so does the start it gives particle 0)."""
        self._check_parameters_at(position, "initial_position")
        if self.initializer is None:
            return
        try:
            start = self.initializer(jax.random.key(0), position)
        except Exception as error:  # noqa: BLE001 - report any failure of the user function
            raise ValueError(f"initializer(key, initial_position) failed: {error}") from error
        start = jnp.asarray(start)
        if start.shape != position.shape or start.dtype != position.dtype:
            raise ValueError(
                f"initializer must return θ₀ of the shape and dtype of initial_position "
                f"({position.shape}, {position.dtype}), got ({start.shape}, {start.dtype})"
            )
        self._check_parameters_at(start, "initializer(key, initial_position)")

    def _check_parameters_at(self, position, name):
        expected = (self.model.num_parameters,)
        if position.shape != expected:
            raise ValueError(
                f"{name} has shape {position.shape}; the model has "
                f"{expected[0]} parameters: expected shape {expected}"
            )
        if position.dtype != self.data.inputs.dtype:
            raise TypeError(
                f"{name} has dtype {position.dtype} but the data set has dtype "
                f"{self.data.inputs.dtype}: they must match"
            )
        try:
            losses = _per_sample_losses(self.model, position, self.data)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"the model cannot evaluate the data set (inputs {self.data.inputs.shape}, "
                f"targets {self.data.targets.shape}): {error}"
            ) from error
        if losses.shape != (self.data.num_samples,):
            raise ValueError(
                f"the per-sample loss must be a scalar, got shape {losses.shape[1:]}"
            )
        if not bool(jnp.all(jnp.isfinite(losses))):
            raise ValueError(f"the per-sample losses are not all finite at {name}")

    def num_streams(self, dim: int, dtype) -> int:
        """Threefry hashes per step: one for the minibatch, then the optimizer's normals."""
        if not self.optimizer_noise:
            return 1
        return 1 + _noise.num_streams(self.model.num_parameters, dtype)

    def bytes_per_step(self) -> int:
        """Bytes one particle touches per step: its minibatch and its state (pool sizing)."""
        sample = self.data.inputs[0].size + self.data.targets[0].size
        itemsize = self.data.inputs.dtype.itemsize
        return itemsize * (self.batch_size * sample + 3 * self.model.num_parameters)

    def cpu_pool_size(self, dim: int) -> int:
        """Slots whose gathered minibatches stay within about 1 MiB (benchmarks/README.md §3),
        at least one step block (256 slots; fewer for particles of over 2^11 parameters, whose
        pool is then one block: benchmarks/README.md §10)."""
        floor = self.step_block(dim) or 2**8
        return max(floor, min(2**16, previous_power_of_two(2**20 // self.bytes_per_step())))

    def initial_state(self, position: jax.Array):
        """(θ, optimizer state) of a particle at its start; θ in the model's
        `parameter_tree` form (a network's pytree of arrays, or the flat vector)."""
        parameters = self.model.parameter_tree(position)
        return parameters, self.transformation().init(parameters)

    def position(self, state) -> jax.Array:
        """The flat θ of a state."""
        return ravel_pytree(state[0])[0]

    @property
    def random_start(self) -> bool:
        return self.initializer is not None

    def start_state(self, state, keys, identity):
        """(θ₀, optimizer state) of particle `identity`: θ₀ = initializer(its key, θ)."""
        return self.initial_state(self.initializer(particle_key(keys, identity),
                                                   self.position(state)))

    def batch_indices(self, keys, particle_index, step) -> jax.Array:
        """The sample indices of one particle's minibatch at `step`, shape (B,)."""
        n = self.data.num_samples
        if self.replacement:
            seed = _noise.threefry_2x32(
                keys[0, 0], keys[0, 1], step.astype(jnp.uint32), particle_index.astype(jnp.uint32)
            )
            # One hash per step, expanded into B words by a keyed mixer; word mod n is uniform
            # up to a relative bias n / 2^32.
            positions = jnp.arange(self.batch_size, dtype=jnp.uint32)
            words = mix(seed[0] + positions * jnp.uint32(0x9E3779B9), seed[1])
            return (words % jnp.uint32(n)).astype(jnp.int32)
        epoch = step // self.steps_per_epoch
        within = step % self.steps_per_epoch
        key_words = jnp.stack(
            _noise.threefry_2x32(
                keys[0, 0], keys[0, 1], epoch.astype(jnp.uint32), particle_index.astype(jnp.uint32)
            )
        )
        slots = (within * self.batch_size).astype(jnp.uint32) + jnp.arange(
            self.batch_size, dtype=jnp.uint32
        )
        return permuted_index(slots, n, key_words).astype(jnp.int32)

    def minibatch_loss(self, parameters, indices) -> jax.Array:
        """L_B(θ) = mean of ℓ over the minibatch `indices`."""
        batch = Dataset(self.data.inputs[indices], self.data.targets[indices])
        return self.model.loss(parameters, batch)

    def update(self, state, keys, particle_index, step):
        """One SGD step of one particle (no batch axis), on the state's parameter pytree."""
        parameters, optimizer_state = state
        indices = self.batch_indices(keys, particle_index, step)
        # The loss of the raveled pytree: XLA compiles the model's slices of a concatenation
        # to the arrays themselves, and their gradient to the arrays' gradients.
        value, gradient = jax.value_and_grad(
            lambda tree: self.minibatch_loss(ravel_pytree(tree)[0], indices))(parameters)
        extra = {"value": value}
        if self.optimizer_noise:
            extra["noise"] = self.model.parameter_tree(
                self._normals(keys[1:], particle_index, step, parameters))
        updates, optimizer_state = self.transformation().update(
            gradient, optimizer_state, parameters, **extra
        )
        return optax.apply_updates(parameters, updates), optimizer_state

    def _normals(self, noise_keys, particle_index, step, parameters) -> jax.Array:
        """The optimizer's standard normals, one per parameter (flat), from the noise streams
        (stream 0 draws the minibatch)."""
        dim = self.model.num_parameters
        dtype = jax.tree.leaves(parameters)[0].dtype
        if dim > _UNROLLED_NORMALS:  # the same values, drawn as one vector
            return _noise.particle_normals(noise_keys, particle_index, step, dim, dtype)
        uniforms = _noise.particle_uniforms(noise_keys, particle_index, step, dtype)
        return jnp.stack([_noise.normal_from_uniform(u) for u in uniforms[:dim]])

    def step(self, state, keys, identity, step, dt, criteria, options=StepOptions(),
             running=None):
        """One SGD step with the escape tests on the new iterate (no path between iterates:
        `options.crossing_correction` does not apply)."""
        new_state = self.update(state, keys, identity, step)
        position = self.position(new_state)
        outside = [criterion.is_outside(position) for criterion in criteria]
        if running is not None:
            new_state = keep_running(running, new_state, state)
        return new_state, outside, all_finite(new_state)

    def splitting_process(self, position: jax.Array) -> "PackedSGD":
        """The packed particle that splitting stores and clones (see `PackedSGD`)."""
        return PackedSGD.from_sgd(self, position)


def particle_key(keys: jax.Array, identity) -> jax.Array:
    """The `jax.random` key of particle `identity`'s start: one Threefry hash of the counter
    (START_COUNTER, identity) under the run's first stream, which no step uses."""
    words = _noise.threefry_2x32(keys[0, 0], keys[0, 1], jnp.uint32(START_COUNTER),
                                 jnp.asarray(identity).astype(jnp.uint32))
    return jax.random.wrap_key_data(jnp.stack(words), impl="threefry2x32")


def particle_start(sgd: MinibatchSGD, initial_position, key: jax.Array, identities):
    """The starts θ₀ that `simulate(sgd, …, key)` gives particles `identities` (global indices)
    when `sgd` has an `initializer`."""
    position = jnp.asarray(initial_position)
    keys = _noise.stream_keys(key, sgd.num_streams(position.shape[0], position.dtype))
    identities = jnp.asarray(identities, jnp.uint32)
    return jax.vmap(lambda identity: sgd.initializer(particle_key(keys, identity), position))(
        identities
    )


class PackedSGD(AbstractParticleProcess):
    """A `MinibatchSGD` particle whose state is one flat vector [θ, optimizer-state leaves].

    Splitting stores one state vector per replica and level. It is unbiased for a Markov chain:
    SGD with i.i.d. minibatches (`replacement=True`) is one in (θ, optimizer state); with
    per-epoch shuffles the epoch's unused samples are part of the state and a clone cannot
    continue its parent's epoch, so that scheme is refused, as are optimizer states with
    non-floating leaves (adam's step count).
    """

    default_dt: ClassVar[float] = 1.0

    sgd: MinibatchSGD
    dim: int = eqx.field(static=True)
    treedef: object = eqx.field(static=True)
    shapes: tuple = eqx.field(static=True)

    @classmethod
    def from_sgd(cls, sgd: MinibatchSGD, position: jax.Array) -> "PackedSGD":
        if sgd.initializer is not None:
            raise ValueError(
                "estimate_escape_time starts every replica at initial_position: use "
                "MinibatchSGD without an initializer"
            )
        if not sgd.replacement:
            raise ValueError(
                "estimate_escape_time needs MinibatchSGD(replacement=True): splitting is "
                "unbiased for a Markov chain, and with per-epoch shuffles (replacement=False) the "
                "epoch's unused samples are part of the state, which a clone cannot continue"
            )
        _, optimizer_state = sgd.initial_state(position)
        leaves = jax.tree.leaves(optimizer_state)
        refused = [leaf for leaf in leaves if jnp.asarray(leaf).dtype != position.dtype]
        if refused:
            raise ValueError(
                "estimate_escape_time supports optimizers whose state leaves are floating arrays "
                f"of the parameters' dtype {position.dtype} (plain SGD, momentum); this "
                "optimizer's state has leaves of dtypes "
                f"{sorted({str(jnp.asarray(x).dtype) for x in refused})} (e.g. adam's step "
                "count): use direct simulation for it"
            )
        return cls(sgd, position.shape[0], jax.tree.structure(optimizer_state),
                   tuple(jnp.shape(leaf) for leaf in leaves))

    def pack(self, state) -> jax.Array:
        leaves = [jnp.ravel(leaf) for leaf in jax.tree.leaves(state[1])]
        return jnp.concatenate([self.sgd.position(state)] + leaves)

    def unpack(self, flat):
        sizes = [math.prod(shape) for shape in self.shapes]
        offsets = np.cumsum([self.dim] + sizes)
        leaves = [flat[start:end].reshape(shape)
                  for start, end, shape in zip(offsets[:-1], offsets[1:], self.shapes)]
        return (self.sgd.model.parameter_tree(flat[: self.dim]),
                jax.tree.unflatten(self.treedef, leaves))

    def check_parameters(self) -> None:
        self.sgd.check_parameters()

    def check_start(self, position: jax.Array) -> None:
        self.sgd.check_start(position)

    def num_streams(self, dim: int, dtype) -> int:
        return self.sgd.num_streams(self.dim, dtype)

    def initial_state(self, position: jax.Array) -> jax.Array:
        return self.pack(self.sgd.initial_state(position))

    def position(self, state: jax.Array) -> jax.Array:
        return state[: self.dim]

    def step(self, state, keys, identity, step, dt, criteria, options=StepOptions(),
             running=None):
        new_state = self.pack(self.sgd.update(self.unpack(state), keys, identity, step))
        position = self.position(new_state)
        outside = [criterion.is_outside(position) for criterion in criteria]
        finite = all_finite(new_state)
        if running is not None:
            new_state = keep_running(running, new_state, state)
        return new_state, outside, finite
