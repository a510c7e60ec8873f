"""SGD particles in adaptive multilevel splitting (`estimate_escape_time` with `MinibatchSGD`).

AMS stores one state vector per replica and per level, so a particle's state (θ, optimizer
state) is packed into one flat vector [θ, floating optimizer-state leaves]. A step is
`MinibatchSGD.update` with the AMS noise identity (run, segment id) as the particle index and
the age as the step; escape is checked on the iterates (SGD has no path between them).

Splitting is unbiased for a Markov chain. SGD with i.i.d. minibatches (`replacement=True`) is a
Markov chain in (θ, optimizer state); with per-epoch shuffles the epoch's unused samples are part
of the state and a clone cannot continue its parent's epoch, so that scheme is refused.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from .._criteria import AbstractEscapeCriterion
from .._sgd.minibatch_sgd import MinibatchSGD
from .._engine.driver import simulate


class SGDParticle(eqx.Module):
    """A `MinibatchSGD` particle whose state is one flat vector [θ, optimizer-state leaves]."""

    sgd: MinibatchSGD
    dim: int = eqx.field(static=True)
    treedef: object = eqx.field(static=True)
    shapes: tuple = eqx.field(static=True)

    def pack(self, state) -> jax.Array:
        position, optimizer_state = state
        leaves = [jnp.ravel(leaf) for leaf in jax.tree.leaves(optimizer_state)]
        return jnp.concatenate([position] + leaves)

    def unpack(self, flat):
        sizes = [math.prod(shape) for shape in self.shapes]
        offsets = np.cumsum([self.dim] + sizes)
        leaves = [flat[start:end].reshape(shape)
                  for start, end, shape in zip(offsets[:-1], offsets[1:], self.shapes)]
        return flat[: self.dim], jax.tree.unflatten(self.treedef, leaves)

    def step_and_escape(self, criteria, keys, identity, age, flat):
        """One SGD step; (new flat state, escaped and finite, finite)."""
        new = self.pack(self.sgd.update(self.unpack(flat), keys, identity, age))
        position = new[: self.dim]
        outside = jnp.zeros((), bool)
        for criterion in criteria:
            outside = outside | criterion.is_outside(position)
        finite = jnp.all(jnp.isfinite(new))
        return new, outside & finite, finite


class OnPosition(eqx.Module):
    """ξ of the flat state: the user's ξ(θ) applied to its first `dim` entries."""

    coordinate: object
    dim: int = eqx.field(static=True)

    def __call__(self, flat):
        return self.coordinate(flat[: self.dim])


def sgd_particle(sgd: MinibatchSGD, initial_position: jax.Array) -> tuple[SGDParticle, jax.Array]:
    """The packed particle and its flat start state; errors name the refused parameters."""
    if not sgd.replacement:
        raise ValueError(
            "estimate_escape_time needs MinibatchSGD(replacement=True): splitting is unbiased "
            "for a Markov chain, and with per-epoch shuffles (replacement=False) the epoch's "
            "unused samples are part of the state, which a clone cannot continue"
        )
    position, optimizer_state = sgd.initial_state(initial_position)
    leaves = jax.tree.leaves(optimizer_state)
    refused = [leaf for leaf in leaves if jnp.asarray(leaf).dtype != position.dtype]
    if refused:
        raise ValueError(
            "estimate_escape_time supports optimizers whose state leaves are floating arrays of "
            f"the parameters' dtype {position.dtype} (plain SGD, momentum); this optimizer's "
            f"state has leaves of dtypes {sorted({str(jnp.asarray(x).dtype) for x in refused})} "
            "(e.g. adam's step count): use direct simulation for it"
        )
    particle = SGDParticle(
        sgd, position.shape[0], jax.tree.structure(optimizer_state),
        tuple(jnp.shape(leaf) for leaf in leaves),
    )
    return particle, particle.pack((position, optimizer_state))


def empirical_levels(sgd, criteria: tuple[AbstractEscapeCriterion, ...], coordinate, start,
                     key, evaluate, *, num_particles=512, max_steps=2**16):
    """Median, 90 % quantile and standard deviation of ξ in the well, from direct SGD runs.

    `num_particles` runs from `start` for K = 32, 64, … steps (each run extends the last: the
    noise is a pure function of (key, particle, step)) until the median and the 90 % quantile
    of ξ at K and 2K agree within a quarter of its standard deviation.
    """
    previous = None
    steps = 32
    while steps <= max_steps:
        result = simulate(sgd, criteria, start, key, num_particles=num_particles,
                          max_steps=steps, num_slots=num_particles)
        kept = result.position[result.censored]
        if kept.shape[0] < num_particles // 2:
            raise ValueError(
                f"{num_particles - kept.shape[0]} of {num_particles} SGD runs escaped or diverged "
                f"within {steps} steps while the default levels were chosen: the well is not "
                "metastable at this scale (use simulate), or pass a_level, sigma_level and "
                "num_levels"
            )
        values = np.asarray(evaluate(coordinate, jnp.asarray(kept)), np.float64)
        current = np.array([np.quantile(values, 0.5), np.quantile(values, 0.9)])
        spread = float(np.std(values))
        if previous is not None and np.all(np.abs(current - previous) <= 0.25 * spread):
            start_value = float(np.asarray(evaluate(coordinate, start[None]))[0])
            return max(float(current[0]), start_value), float(current[1]), spread
        previous = current
        steps *= 2
    raise ValueError(
        f"the law of the reaction coordinate in the well did not settle within {max_steps} SGD "
        "steps: pass a_level, sigma_level and num_levels"
    )


def levels_key(key):
    """The key of the level-choosing runs (independent of the loop and AMS streams)."""
    return jr.fold_in(key, 2**31 - 1)
