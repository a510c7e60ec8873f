r"""Any network as SGD particles: an `eqx.Module` or a function of a parameter pytree.

`NetworkModel` is an `AbstractModel`: it ravels the network's parameters into the flat θ that
`MinibatchSGD`, the escape criteria and the engine move (`jax.flatten_util.ravel_pytree`), and
unravels θ inside its loss, so no hand flattening is needed. Losses: the squared error
$\ell = \frac12|f(x) - y|^2$ (Mori et al.'s eq. 1, Wu, Ma & E's MSE on one-hot targets;
docs/THEORY.md §3.1, §5.5) and the softmax cross-entropy $-\log{\rm softmax}(f(x))_y$ (integer
labels stored as floats, or one-hot / probability rows), or any per-sample loss of the pytree.

`evaluate_particles` gives the loss and accuracy of every particle's parameters, e.g. the
`EscapeResult.position` rows, on a training or test set; `accuracy_below` is Wu, Ma & E's escape
criterion (training accuracy below a threshold).
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from .._criteria import Predicate
from .data import Dataset
from .._arrays import float_array
from .models import AbstractModel


LOSSES = ("mse", "cross_entropy")


class NetworkModel(AbstractModel):
    r"""A network and a loss as a per-sample loss of the flat parameter vector θ.

    **Arguments:**

    - `network`: an `eqx.Module` called as `network(x)` on one sample (its inexact arrays are
      the parameters; everything else stays fixed), or a function `network(parameters, x)`.
    - `parameters`: the parameter pytree when `network` is a function (its values are
      `initial_parameters`); None for a module.
    - `loss`: "mse" ($\frac12\sum_k (f_k - y_k)^2$, targets of the output's shape) or
      "cross_entropy" (targets: a class index as a float, or one-hot rows).
    - `weight_decay`: λ ≥ 0 adds the L2 penalty $\frac\lambda2|\theta|^2$ (all parameters) to every
      sample's loss, so cross-entropy on separable data has a minimum (λ > 0: the loss is
      coercive). The penalty's gradient is the same for every sample: it is absent from the
      gradient noise, present in the Hessian (+λI). An array: sweeping it does not recompile.

    For a per-sample loss `loss(parameters, x, y)` without a network, use `from_loss`.
    """

    initial_parameters: jax.Array
    unravel: Callable = eqx.field(static=True)
    structure: object = eqx.field(static=True)  # the module without its parameters, or None
    function: Callable | None = eqx.field(static=True)  # network(parameters, x) or loss(p, x, y)
    loss_name: str = eqx.field(static=True)
    weight_decay: jax.Array | None = None

    def __init__(self, network, parameters=None, *, loss: str = "mse", weight_decay=None):
        if loss not in LOSSES and loss != "given":
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if weight_decay is not None:
            if not (float(weight_decay) >= 0 and math.isfinite(float(weight_decay))):
                raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay}")
            self.weight_decay = float_array(weight_decay)
        else:
            self.weight_decay = None
        if parameters is None:
            if not isinstance(network, eqx.Module):
                raise TypeError(
                    "network must be an eqx.Module, or a function network(parameters, x) given "
                    f"with its parameters; got {network!r} without parameters"
                )
            parameters, self.structure = eqx.partition(network, eqx.is_inexact_array)
            self.function = None
        elif not callable(network):
            raise TypeError(f"network must be callable, got {network!r}")
        else:
            self.structure, self.function = None, network
        self.initial_parameters, self.unravel = ravel_pytree(parameters)
        if self.initial_parameters.size == 0:
            raise ValueError("the network has no floating-point parameters to train")
        self.loss_name = loss

    @classmethod
    def from_loss(cls, loss: Callable, parameters) -> "NetworkModel":
        """A model from a per-sample loss `loss(parameters, x, y)` of a parameter pytree (no
        predictions: `evaluate_particles` then reports no accuracy)."""
        if not callable(loss):
            raise TypeError(f"loss must be a function loss(parameters, x, y), got {loss!r}")
        return cls(loss, parameters, loss="given")

    @property
    def num_parameters(self) -> int:
        return self.initial_parameters.shape[0]

    def random_initializer(self, make: Callable) -> Callable:
        """A `MinibatchSGD(initializer=...)` that trains from scratch: particle i starts at the
        parameters of `make(key_i)`, raveled; `make(key)` returns a network like this one (an
        `eqx.Module`, e.g. `lambda key: eqx.nn.MLP(64, 10, 32, 1, key=key)` with its default
        initialisation) or the parameter pytree. Call it once per model and reuse the result
        (a new function recompiles)."""
        def parameters_of(key):
            made = make(key)
            return made if self.structure is None else eqx.partition(made,
                                                                     eqx.is_inexact_array)[0]

        expected = [leaf.shape for leaf in jax.tree.leaves(self.unravel(self.initial_parameters))]
        made = [leaf.shape for leaf in jax.tree.leaves(jax.eval_shape(parameters_of,
                                                                      jax.random.key(0)))]
        if made != expected:
            raise ValueError(
                f"make(key) must give a network with this model's parameter shapes {expected}, "
                f"got {made}"
            )

        # Jitted once: the pool's refills and `particle_start` reuse one trace of `make`.
        flat_start = jax.jit(lambda key: ravel_pytree(parameters_of(key))[0])

        def start(key, position):
            return flat_start(key).astype(position.dtype)

        return start

    def parameter_tree(self, parameters: jax.Array):
        """The parameter pytree at the flat θ: `MinibatchSGD`'s state holds it (faster than the
        flat vector: benchmarks/README.md §10, "The parameter pytree as the state")."""
        return self.unravel(parameters)

    def unflatten(self, parameters: jax.Array):
        """The network (an `eqx.Module`) or the parameter pytree at the flat θ."""
        tree = self.unravel(parameters)
        return tree if self.structure is None else eqx.combine(tree, self.structure)

    def predict(self, parameters: jax.Array, input: jax.Array) -> jax.Array:
        """f(θ; x) for one sample."""
        if self.loss_name == "given":
            raise TypeError("a NetworkModel made from_loss has no predictions")
        if self.function is None:
            return self.unflatten(parameters)(input)
        return self.function(self.unravel(parameters), input)

    def per_sample_loss(self, parameters, input, target):
        loss = self._data_loss(parameters, input, target)
        if self.weight_decay is None:
            return loss
        return loss + 0.5 * self.weight_decay.astype(loss.dtype) * jnp.sum(parameters ** 2)

    def _data_loss(self, parameters, input, target):
        if self.loss_name == "given":
            return self.function(self.unravel(parameters), input, target)
        prediction = self.predict(parameters, input)
        if self.loss_name == "cross_entropy" and jnp.ndim(target) == 0:
            # A label that is not one of the classes gives NaN (optax would wrap -1 around);
            # `check_data` (MinibatchSGD, evaluate_particles) names the labels before that.
            valid = (target >= 0) & (target < prediction.shape[-1]) & (target == jnp.round(target))
            loss = optax.softmax_cross_entropy_with_integer_labels(prediction,
                                                                   target.astype(jnp.int32))
            return jnp.where(valid, loss, jnp.nan)
        target = jnp.reshape(target, prediction.shape) if jnp.size(target) == jnp.size(
            prediction) else target
        if jnp.shape(target) != jnp.shape(prediction):
            raise ValueError(
                f"the network's output has shape {jnp.shape(prediction)} but a target has shape "
                f"{jnp.shape(target)}: with loss={self.loss_name!r} they must match"
                + (" (class labels need loss='cross_entropy' or one-hot targets)"
                   if jnp.ndim(target) == 0 else "")
            )
        if self.loss_name == "cross_entropy":
            return optax.softmax_cross_entropy(prediction, target)
        return jnp.sum(optax.l2_loss(prediction, target))

    def correct(self, parameters, input, target) -> jax.Array:
        """Whether the prediction's class is the target's: argmax against the label or the
        one-hot row; for one output, the sign against a ±1 target."""
        prediction = jnp.ravel(self.predict(parameters, input))
        if prediction.shape[0] == 1:
            return jnp.sign(prediction[0]) == jnp.sign(jnp.ravel(target)[0])
        label = target.astype(jnp.int32) if jnp.ndim(target) == 0 else jnp.argmax(target)
        return jnp.argmax(prediction) == label

    def accuracy(self, parameters: jax.Array, data: Dataset) -> jax.Array:
        """The fraction of `data` classified correctly at θ."""
        return jnp.mean(jax.vmap(self.correct, (None, 0, 0))(parameters, data.inputs,
                                                              data.targets))

    def check_data(self, data: Dataset) -> None:
        """Errors naming the problem when `data` does not fit the network (before compiling)."""
        if self.loss_name == "given":
            return
        sample = jax.ShapeDtypeStruct(data.inputs.shape[1:], data.inputs.dtype)
        target = jax.ShapeDtypeStruct(data.targets.shape[1:], data.targets.dtype)
        try:
            probe = _remembered_shape(self, "predict", sample)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"the network cannot evaluate the data set: data.inputs has samples of shape "
                f"{data.inputs.shape[1:]}, which the network does not take: {error}"
            ) from error
        if data.targets.ndim == 1 and probe.size > 1:
            labels = jax.device_get(data.targets)
            if (labels < 0).any() or (labels >= probe.size).any() or (labels % 1 != 0).any():
                raise ValueError(
                    f"the class labels must be integers between 0 and {probe.size - 1} (the "
                    f"network has {probe.size} outputs), got {labels.min()}..{labels.max()}"
                )
        _remembered_shape(self, "per_sample_loss", sample, target)


_SHAPES: dict = {}  # (method, model structure, argument shapes) -> its output's shape
_SHAPES_KEPT = 64


def _remembered_shape(model: NetworkModel, method: str, *samples):
    """`jax.eval_shape` of `model.method(θ, *samples)`, traced once per model structure (the
    treedef: the network's layers, activations and loss) and shapes instead of at every
    `simulate` call (benchmarks/README.md §10). A model whose structure cannot be hashed is
    traced every time."""
    leaves, treedef = jax.tree.flatten((model, samples))
    try:
        key = (method, treedef, tuple((leaf.shape, leaf.dtype) for leaf in leaves))
        shape = _SHAPES.get(key)
    except (TypeError, ValueError, AttributeError):  # unhashable or incomparable
        key = shape = None
    if shape is None:
        shape = jax.eval_shape(getattr(model, method), model.initial_parameters, *samples)
        if key is not None:
            if len(_SHAPES) >= _SHAPES_KEPT:
                _SHAPES.clear()
            _SHAPES[key] = shape
    return shape


class ParticleMetrics(NamedTuple):
    """Per-particle loss and accuracy on one data set, shape (N,) each (accuracy NaN for a
    model without predictions)."""

    loss: jax.Array
    accuracy: jax.Array


@eqx.filter_jit
def _metrics(model, positions, data, chunk_size):
    def one(parameters):
        accuracy = (model.accuracy(parameters, data) if isinstance(model, NetworkModel)
                    and model.loss_name != "given" else jnp.nan)
        return model.loss(parameters, data), jnp.asarray(accuracy, positions.dtype)

    return jax.lax.map(one, positions, batch_size=chunk_size)


def evaluate_particles(model: AbstractModel, positions, data: Dataset, *,
                       chunk_size: int = 64) -> ParticleMetrics:
    """The loss L(θ) and accuracy of each particle's parameters on `data`.

    **Arguments:**

    - `model`: a `NetworkModel` (or any `AbstractModel`: then the accuracy is NaN).
    - `positions`: θ of shape (N, P), e.g. `EscapeResult.position` (at escape, or at the end
      for censored particles).
    - `data`: the training or test set (`SplitDataset.train` / `.test`).
    - `chunk_size`: particles evaluated at once (memory: chunk_size · n · the network's
      activations).

    **Returns:** `ParticleMetrics(loss, accuracy)`, each of shape (N,).
    """
    positions = jnp.asarray(positions)
    if positions.ndim != 2 or positions.shape[1] != model.num_parameters:
        raise ValueError(
            f"positions must have shape (N, {model.num_parameters}) (one θ per particle), got "
            f"{positions.shape}"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    if isinstance(model, NetworkModel):
        model.check_data(data)
    loss, accuracy = _metrics(model, positions.astype(data.inputs.dtype), data,
                              min(chunk_size, positions.shape[0]))
    return ParticleMetrics(loss, accuracy)


def _accuracy_below(position, parameters):
    model, data, threshold = parameters
    return model.accuracy(position, data) < threshold


def accuracy_below(model: NetworkModel, data: Dataset, threshold) -> Predicate:
    """Escape once the accuracy on `data` falls below `threshold` (Wu, Ma & E's waiting-time
    experiment uses the training accuracy below 30%; docs/THEORY.md §5.5)."""
    model.check_data(data)
    return Predicate(_accuracy_below, (model, data, jnp.asarray(threshold, data.inputs.dtype)))
