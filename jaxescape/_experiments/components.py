"""The components of a general sweep point: landscape, dynamics (an SDE or real SGD), model, data
set, optimizer, escape criterion and start, each named with its options.

A component is a built-in name (the tables below) or an import path `package.module:attribute`
naming a class or a function that returns the component. In a sweep, a component is a string
(its name) or a table whose `name` is the component and whose other keys are its options; it is
flattened into point keys `component` and `component.option`, which are swept like any other
key::

    [parameters]
    landscape = {name = "double-well", barrier_height = 1.0, curvature = 4.0}
    dynamics = {name = "meng", learning_rate = 0.1, sigma = 1.0, kappa = 1.0}
    criterion = "past-saddle"

    [grid]
    "dynamics.learning_rate" = [0.05, 0.1, 0.2]

The options are the keyword arguments of the class or function (checked against its signature
when the sweep is made, before anything is compiled: an unknown option names the closest valid
one, a missing one is named). The parts a component is built from are passed by keyword where
its signature asks for them: `landscape` (dynamics, criteria), `model` and `data` (SGD, the
minibatch-noise SDE, models), `key` (from the option `seed`, default 0, for data sets and
networks), `start` (criteria). Lists of numbers become NumPy arrays; numbers stay numbers (the
library's modules store them as arrays, so points that differ only in numbers share one
compilation).
"""

import difflib
import importlib
import inspect
import math
import numbers

import jax
import numpy as np
import optax

from .config import ConfigError
from .._criteria import AbstractEscapeCriterion, HalfSpace, LossAbove, OutsideBall, past_saddle
from .._dynamics import LevyLangevin, OverdampedLangevin
from .._dynamics.noise_models import MengPowerLawNoise, MoriLossNoise, XieSGDNoise
from .._landscapes import (
    AbstractLandscape,
    AnisotropicWell,
    DoubleWellProduct,
    StyblinskiTang,
    TiltedDoubleWell,
)
from .._particle import AbstractParticleProcess
from .._sgd import (
    AbstractModel,
    Dataset,
    LinearRegression,
    MengDoubleWell,
    MinibatchNoiseSDE,
    MinibatchSGD,
    MinimumOfQuadratics,
    MLPRegression,
    NetworkModel,
    TrainingLoss,
    accuracy_below,
    gaussian_regression_data,
    hessian_top_eigenvalues,
    load_sklearn_dataset,
    interpolation_data,
    meng_data,
    meng_shift_for_barrier,
)


COMPONENTS = ("landscape", "model", "data", "optimizer", "dynamics", "criterion", "start",
              "measurement")
# Parts passed to a component's builder where its signature names them (never options).
INJECTED = ("landscape", "model", "data", "key", "start", "optimizer", "optimizer_options",
            "progress")


def _meng_model(data: Dataset, shift=None, barrier=None) -> MengDoubleWell:
    """`MengDoubleWell` with its shift a, or the shift giving the barrier ΔL on `data`."""
    if (shift is None) == (barrier is None):
        raise ValueError("give exactly one of shift and barrier")
    return MengDoubleWell(meng_shift_for_barrier(data, barrier) if shift is None else shift)


def _sklearn_data(key, dataset, num_train=None, test_fraction=0.2, random_label_fraction=0.0,
                  targets="one_hot", standardise="feature") -> Dataset:
    """The training set of a scikit-learn bundled data set `dataset` ("digits", "wine",
    "breast_cancer"; `load_sklearn_dataset`: the split, subset and random labels drawn from the
    option `seed`)."""
    return load_sklearn_dataset(dataset, key, num_train=num_train, test_fraction=test_fraction,
                                random_label_fraction=random_label_fraction, targets=targets,
                                standardise=standardise).train


def _mlp(data: Dataset, key, width=32, depth=1, activation="relu", loss="mse",
         weight_decay=None) -> NetworkModel:
    """A fully connected network (`eqx.nn.MLP`, `depth` hidden layers of `width` units) sized to
    the data: inputs → targets (one-hot rows, or one output per class index for cross-entropy
    on integer labels); initialised from the option `seed`; `weight_decay` λ adds (λ/2)|θ|²."""
    import equinox as eqx

    activations = {"relu": jax.nn.relu, "tanh": jax.numpy.tanh, "gelu": jax.nn.gelu}
    if activation not in activations:
        raise ValueError(f"activation must be one of {', '.join(activations)}, got "
                         f"{activation!r}")
    targets = data.targets
    outputs = targets.shape[1] if targets.ndim == 2 else int(np.max(np.asarray(targets))) + 1
    if loss == "mse" and targets.ndim != 2:
        outputs = "scalar"
    network = eqx.nn.MLP(data.inputs.shape[1], outputs, int(width), int(depth),
                         activation=activations[activation], key=key,
                         dtype=data.inputs.dtype)
    return NetworkModel(network, loss=loss, weight_decay=weight_decay)


def _past_saddle(landscape, distance=None):
    return past_saddle(landscape, distance)


def _loss_above(landscape, start, factor=None, threshold=None):
    """L(y) >= threshold, or >= factor · L(start) (c · L* from the minimum)."""
    if (factor is None) == (threshold is None):
        raise ValueError("give exactly one of factor and threshold")
    if threshold is None:
        threshold = factor * float(landscape.loss(start))
    return LossAbove(landscape, threshold)


def _outside_ball(start, radius, center=None):
    return OutsideBall(start if center is None else center, radius)


def _accuracy_below(model, data, landscape, start, threshold, loss_factor=None):
    """The accuracy on the training data below `threshold` (Wu, Ma & E's criterion,
    `accuracy_below`), and with `loss_factor` c also the training loss at c·L(start): two
    criteria, whose index each particle's `boundary` records (0: accuracy, 1: loss)."""
    if not isinstance(model, NetworkModel):
        raise ValueError(f"needs a network model (model = 'mlp'), got {type(model).__name__}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be an accuracy in (0, 1], got {threshold}")
    criterion = accuracy_below(model, data, threshold)
    if loss_factor is None:
        return criterion
    return criterion, _loss_above(landscape, start, factor=loss_factor)


LANDSCAPES = {"double-well": TiltedDoubleWell, "styblinski-tang": StyblinskiTang,
              "anisotropic-well": AnisotropicWell, "double-well-product": DoubleWellProduct}
MODELS = {"linear-regression": LinearRegression, "meng-double-well": _meng_model,
          "minimum-of-quadratics": MinimumOfQuadratics, "mlp-regression": MLPRegression,
          "mlp": _mlp}
DATA = {"gaussian-regression": gaussian_regression_data, "interpolation": interpolation_data,
        "meng": meng_data, "sklearn": _sklearn_data}
DYNAMICS = {"langevin": OverdampedLangevin, "xie": XieSGDNoise, "mori": MoriLossNoise,
            "meng": MengPowerLawNoise, "minibatch-noise": MinibatchNoiseSDE, "sgd": MinibatchSGD,
            "levy": LevyLangevin}
CRITERIA = {"past-saddle": _past_saddle, "half-space": HalfSpace, "loss-above": _loss_above,
            "outside-ball": _outside_ball, "accuracy-below": _accuracy_below}
# Measurements (method "measure"): functions of a point's key and options returning named
# scalars and arrays (`measurements.py`); none is built in, they are named by import path.
MEASUREMENTS = {}
REGISTRIES = {"landscape": LANDSCAPES, "model": MODELS, "data": DATA, "dynamics": DYNAMICS,
              "criterion": CRITERIA, "measurement": MEASUREMENTS}
DEFAULTS = {"dynamics": "langevin", "criterion": "past-saddle", "start": "minimum"}
# Dynamics built from a model and a data set (their landscape is the training loss).
_TRAINING = ("minibatch-noise", "sgd")
# The start's names and the options each takes (keys `start.option`).
STARTS = {"minimum": ("guess",), "initial": (), "gd-minimum": ("learning_rate", "steps")}
# A training dynamics' learning rate as a fraction of the start's stability limit 2/a.
STABILITY_FRACTION = "stability_fraction"
SHARPNESS_ITERATIONS = 40  # Lanczos iterations of `start_sharpness`


def resolve(component: str, name):
    """The class or function a component's name denotes; `ConfigError` naming the field."""
    if component == "optimizer":
        factory = getattr(optax, name, None) if isinstance(name, str) else None
        if not callable(factory) or name.startswith("_"):
            raise ConfigError(f"optimizer must be the name of an optax optimizer (e.g. 'sgd', "
                              f"'adam', 'momentum'), got {name!r}")
        return factory
    registry = REGISTRIES[component]
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{component} must be a name ({', '.join(registry)}) or an import "
                          f"path 'package.module:attribute', got {name!r}")
    if name in registry:
        return registry[name]
    if ":" not in name:
        close = difflib.get_close_matches(name, list(registry), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        builtin = f"built-in: {', '.join(registry)}, or " if registry else ""
        raise ConfigError(f"unknown {component} {name!r}; {hint}{builtin}an import path "
                          "'package.module:attribute'")
    return import_callable(component, name)


def import_callable(field: str, path: str):
    """The class or function an import path `package.module:attribute` names; `ConfigError`
    naming `field` when it cannot be imported or is not callable."""
    module_name, separator, attribute = path.partition(":") if isinstance(path, str) \
        else ("", "", "")
    if not separator or not module_name or not attribute:
        raise ConfigError(f"{field} must be an import path 'package.module:attribute', got "
                          f"{path!r}")
    try:
        target = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(f"{field} {path!r} cannot be imported: {error}") from None
    if not callable(target):
        raise ConfigError(f"{field} {path!r} is not a class or function")
    return target


def signature_parameters(target) -> dict:
    """The parameters of a class or function by name (empty when it has no signature)."""
    try:
        return dict(inspect.signature(target).parameters)
    except (TypeError, ValueError):  # no signature: accept any option
        return {}


def check_options(component: str, name, options: dict, source: str) -> None:
    """Option names against the component's signature: unknown and missing ones are named."""
    target = resolve(component, name)
    parameters = signature_parameters(target)
    if component == "optimizer":
        parameters.pop("learning_rate", None)
    accepts_any = any(item.kind is inspect.Parameter.VAR_KEYWORD for item in parameters.values())
    valid = [key for key, item in parameters.items() if key not in INJECTED
             and item.kind not in (inspect.Parameter.VAR_POSITIONAL,
                                   inspect.Parameter.VAR_KEYWORD)]
    if "key" in parameters and component != "measurement":  # a measurement gets the point's key
        valid.append("seed")
    if component == "dynamics" and "learning_rate" in parameters and "model" in parameters:
        valid.append(STABILITY_FRACTION)
        if STABILITY_FRACTION in options and "learning_rate" in options:
            raise ConfigError(f"{source}: give dynamics.learning_rate or "
                              f"dynamics.{STABILITY_FRACTION}, not both")
    for option in options:
        if option not in valid and not accepts_any and parameters:
            close = difflib.get_close_matches(option, valid, n=1)
            hint = f"did you mean {component}.{close[0]}? " if close else ""
            raise ConfigError(f"{source}: unknown option {component}.{option} of {name!r}; "
                              f"{hint}valid: {', '.join(valid) or 'none'}")
    for key, item in parameters.items():
        if (item.default is inspect.Parameter.empty and key not in options
                and key not in INJECTED and item.kind not in (
                    inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
                and not (component == "dynamics" and key == "learning_rate")):
            raise ConfigError(f"{source}: {component} {name!r} needs the option "
                              f"{component}.{key}")


def check_value(name: str, value):
    """A point value: a number, a bool, a string or a (nested) list of numbers (a tuple)."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be finite, got {value!r}")
        return value
    if isinstance(value, list | tuple) and value:
        return tuple(check_value(f"{name}[{index}]", item) for index, item in enumerate(value))
    raise ConfigError(f"{name} must be a number, true/false, a string or a non-empty list of "
                      f"numbers, got {value!r}")


def options_of(point: dict, component: str) -> dict:
    """The options `component.option` of a point (None: not given)."""
    prefix = component + "."
    return {key[len(prefix):]: value for key, value in point.items()
            if key.startswith(prefix) and value is not None}


def _argument(value):
    return np.asarray(value, np.float64) if isinstance(value, tuple) else value


def _call(component: str, name, options: dict, parts: dict):
    """Calls the component's builder with its options and the parts its signature names."""
    target = resolve(component, name)
    parameters = signature_parameters(target)
    arguments = {key: _argument(value) for key, value in options.items() if key != "seed"}
    if "key" in parameters:
        arguments["key"] = jax.random.key(int(options.get("seed", 0)))
    for key, value in parts.items():
        if key in parameters:
            arguments[key] = value
    try:
        return target(**arguments)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{component} {name!r}: {error}") from None


def _expect(component: str, name, built, kind) -> None:
    parts = built if component == "criterion" and isinstance(built, tuple) and built else (built,)
    for part in parts:
        if not isinstance(part, kind):
            raise ConfigError(f"{component} {name!r} gave a {type(part).__name__}, not a "
                              f"{kind.__name__}")


def build_point(point: dict) -> dict:
    """The objects of a resolved general point: landscape, process, criterion and start.

    **Raises:**

    - `ConfigError`: naming the component whose construction or check failed.
    """
    dynamics_name = point["dynamics"]
    parts = {}
    training = dynamics_name in _TRAINING or point.get("model") is not None
    if training:
        if point.get("model") is None or point.get("data") is None:
            raise ConfigError(f"dynamics {dynamics_name!r} needs a model and a data set "
                              "(model = ..., data = ...)")
        data = _call("data", point["data"], options_of(point, "data"), {})
        _expect("data", point["data"], data, Dataset)
        model = _call("model", point["model"], options_of(point, "model"), {"data": data})
        _expect("model", point["model"], model, AbstractModel)
        parts.update(model=model, data=data)
        landscape = TrainingLoss(model, data)
        try:  # shapes only: nothing is compiled
            jax.eval_shape(landscape.loss, jax.numpy.zeros(model.num_parameters))
        except (TypeError, ValueError) as error:
            raise ConfigError(f"model {point['model']!r} does not fit data {point['data']!r}: "
                              f"{str(error).splitlines()[0]}") from None
    else:
        if point.get("landscape") is None:
            raise ConfigError("a point needs a landscape (or, for SGD, a model and data)")
        landscape = _call("landscape", point["landscape"], options_of(point, "landscape"), {})
        _expect("landscape", point["landscape"], landscape, AbstractLandscape)
    parts["landscape"] = landscape
    start = _start(point, landscape, model=parts.get("model"))
    dynamics_options = options_of(point, "dynamics")
    fraction = dynamics_options.pop(STABILITY_FRACTION, None)
    if fraction is not None:  # η = f·2/a, a the sharpness at the start
        sharpness = _cached(_SHARPNESSES, point, lambda: start_sharpness(landscape, start))
        dynamics_options["learning_rate"] = float(fraction) * 2 / sharpness
    if dynamics_name == "sgd":
        optimizer = point.get("optimizer") or "sgd"
        parts.update(optimizer=resolve("optimizer", optimizer),
                     optimizer_options={key: float(value) for key, value
                                        in options_of(point, "optimizer").items()})
    dynamics = _call("dynamics", dynamics_name, dynamics_options, parts)
    _expect("dynamics", dynamics_name, dynamics, AbstractParticleProcess)
    try:
        dynamics.check_parameters()
        dynamics.check_start(start)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"dynamics {dynamics_name!r}: {error}") from None
    criterion = _call("criterion", point["criterion"], options_of(point, "criterion"),
                      {"landscape": landscape, "start": start, "model": parts.get("model"),
                       "data": parts.get("data")})
    _expect("criterion", point["criterion"], criterion, AbstractEscapeCriterion)
    for part in criterion if isinstance(criterion, tuple) else (criterion,):
        if bool(part.is_outside(start)):
            raise ConfigError(f"start is outside the escape criterion {point['criterion']!r}: "
                              "the particles would escape at step 0")
    return {"landscape": landscape, "dynamics": dynamics, "criterion": criterion,
            "start": start}


# The starts and sharpnesses of the last points built, by the point's model, data and start
# options (a sweep's points often share one GD minimum: it is computed once per process).
_GD_MINIMA: dict = {}
_SHARPNESSES: dict = {}
_CACHED_POINTS = 8


def _cached(cache: dict, point: dict, compute):
    """`compute()` once per (model, data, start) options of `point` and float precision."""
    key = (jax.config.jax_enable_x64, tuple(sorted(
        (name, value) for name, value in point.items()
        if name.split(".", 1)[0] in ("model", "data", "start"))))
    if key not in cache:
        if len(cache) >= _CACHED_POINTS:
            cache.pop(next(iter(cache)))
        cache[key] = compute()
    return cache[key]


def start_sharpness(landscape, start) -> float:
    """a = λ_max(∇²L) at `start`: the top Hessian eigenvalue of the landscape's loss by Lanczos
    (`hessian_top_eigenvalues`, `SHARPNESS_ITERATIONS` iterations, key 0). Gradient descent at
    η is stable at a minimum only if a ≤ 2/η (Wu, Ma & E; docs/THEORY.md §5.3)."""
    value = hessian_top_eigenvalues(landscape.loss, start, 1, jax.random.key(0),
                                    num_iterations=min(SHARPNESS_ITERATIONS, start.shape[0]))[0]
    if not float(value) > 0:
        raise ConfigError(f"dynamics.{STABILITY_FRACTION} needs a start of positive sharpness, "
                          f"got a = {float(value):.3g}")
    return float(value)


def gradient_descent_minimum(landscape, start, learning_rate: float, steps: int) -> jax.Array:
    """θ after `steps` iterations of full-batch gradient descent θ ← θ − η∇L(θ) on the
    landscape's loss from `start` (one compiled `lax.scan`; a GD minimum where GD converges,
    the start of Wu, Ma & E's restart experiment)."""
    def body(theta, _):
        return theta - learning_rate * jax.grad(landscape.loss)(theta), None

    descend = jax.jit(lambda theta: jax.lax.scan(body, theta, None, length=steps)[0])
    theta = descend(jax.numpy.asarray(start))
    if not bool(jax.numpy.all(jax.numpy.isfinite(theta))):
        raise ConfigError(f"start 'gd-minimum': gradient descent at start.learning_rate = "
                          f"{learning_rate:g} diverged (too large a rate)")
    return theta


def _start(point: dict, landscape, model) -> jax.Array:
    """The start: given coordinates, the landscape's minimum, a model's initial parameters, or
    where full-batch gradient descent from them ends ("gd-minimum")."""
    value = point["start"]
    dim = landscape.dim
    if isinstance(value, tuple):
        start = np.asarray(value, np.float64).reshape(-1)
        if start.shape != (dim,):
            raise ConfigError(f"start must have {dim} coordinates (the landscape's dim), got "
                              f"{start.shape[0]}")
        return jax.numpy.asarray(start, jax.numpy.zeros(()).dtype)
    if value in ("initial", "gd-minimum") and not hasattr(model, "initial_parameters"):
        raise ConfigError(f"start {value!r} needs a model with initial parameters (a network, "
                          f"model = 'mlp'), got {type(model).__name__ if model else 'none'}")
    if value == "initial":
        return model.initial_parameters
    if value == "gd-minimum":
        return _cached(_GD_MINIMA, point, lambda: gradient_descent_minimum(
            landscape, model.initial_parameters, float(point["start.learning_rate"]),
            int(point["start.steps"])))
    if value != "minimum":
        raise ConfigError(f"start must be 'minimum', 'initial' or 'gd-minimum' (from a "
                          f"network's initialisation) or a list of {dim} coordinates, got "
                          f"{value!r}")
    try:
        return landscape.minimum()
    except NotImplementedError:
        guess = point.get("start.guess")
        if guess is None and hasattr(model, "initial_parameters"):
            guess = model.initial_parameters  # a network: descend from its initialisation
        return _minimise(landscape, guess)


def _minimise(landscape, guess) -> jax.Array:
    """A minimum of the landscape's loss found by BFGS (scipy) from `guess` (default 0; a
    network's initial parameters)."""
    import scipy.optimize

    loss = jax.jit(jax.value_and_grad(lambda y: landscape.loss(y.astype(
        jax.numpy.zeros(()).dtype))))
    start = np.zeros(landscape.dim) if guess is None else np.asarray(guess, np.float64)

    def objective(y):
        value, gradient = loss(jax.numpy.asarray(y))
        return float(value), np.asarray(gradient, np.float64)

    solution = scipy.optimize.minimize(objective, start, jac=True, method="BFGS",
                                       options={"gtol": 1e-6})
    return jax.numpy.asarray(solution.x, jax.numpy.zeros(()).dtype)


def exact_reference(built: dict, point: dict) -> tuple[float | None, float | None]:
    """The exact quadrature MFPT and Kramers' time where they exist, else None.

    Exact: a 1-D SDE leaving through a half-space (reflecting far on the inner side); the 1-D
    α-stable chain (`levy`) leaving an `outside-ball` interval (`_levy_chain_reference`).
    Kramers: overdamped Langevin on a landscape with a known saddle, through `past-saddle`.
    """
    from .._dynamics.sde import AbstractDynamics
    from .._theory.quadrature import kramers_time
    from .._theory.reference import exact_mfpt

    landscape, dynamics = built["landscape"], built["dynamics"]
    if isinstance(dynamics, LevyLangevin):
        return _levy_chain_reference(built, point), None
    criterion, start = built["criterion"], built["start"]
    if landscape.dim != 1 or not isinstance(dynamics, AbstractDynamics) \
            or not isinstance(criterion, HalfSpace):
        return None, None
    sign = float(np.sign(np.asarray(criterion.normal).reshape(-1)[0]))
    absorbing = float(criterion.offset) * sign
    begin = float(np.asarray(start).reshape(-1)[0])
    reflecting = begin - 2.0 * (absorbing - begin)
    try:
        exact = exact_mfpt(dynamics, begin, reflecting, absorbing)
    except (ValueError, TypeError, NotImplementedError):
        exact = None
    if exact is not None and not math.isfinite(exact):
        exact = None
    kramers = None
    if isinstance(dynamics, OverdampedLangevin) and point["criterion"] == "past-saddle":
        try:
            minimum, saddle = landscape.minimum(), landscape.saddle()
            curvatures = [abs(float(landscape.hessian(y)[0, 0])) for y in (minimum, saddle)]
            kramers = kramers_time(float(landscape.barrier()), *curvatures,
                                   float(dynamics.temperature), "beyond_saddle")
        except NotImplementedError:
            kramers = None
    return exact, kramers


def _levy_chain_reference(built: dict, point: dict) -> float | None:
    """The exact mean exit time of the discretised 1-D α-stable chain at the point's dt
    (`levy_chain_mean_exit_time`, a dense Nyström solve) from an `outside-ball` interval
    (center ± radius), without a Gaussian part; None otherwise, or when its grid would exceed
    4001 points (a small noise scale ε·dt^(1/α) against the interval)."""
    from .._theory.levy import levy_chain_mean_exit_time

    landscape, dynamics = built["landscape"], built["dynamics"]
    criterion, start = built["criterion"], built["start"]
    dt = point.get("dt") or dynamics.default_dt
    if landscape.dim != 1 or dynamics.temperature is not None or dt is None \
            or not isinstance(criterion, OutsideBall):
        return None
    center = float(np.asarray(criterion.center).reshape(-1)[0])
    radius = float(criterion.radius)
    gradient = jax.jit(jax.vmap(landscape.gradient))

    def numpy_gradient(x):
        x = np.asarray(x, np.float64)
        values = gradient(jax.numpy.asarray(x.reshape(-1, 1), jax.numpy.zeros(()).dtype))
        return np.asarray(values, np.float64).reshape(x.shape)

    try:
        return float(levy_chain_mean_exit_time(
            numpy_gradient, float(dynamics.alpha), float(dynamics.epsilon), float(dt),
            center - radius, center + radius, float(np.asarray(start).reshape(-1)[0]),
            max_points=4001))
    except ValueError:
        return None
