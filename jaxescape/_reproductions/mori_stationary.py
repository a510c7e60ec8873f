r"""Mori et al.'s stationary law near an MSE minimum, measured with real minibatch SGD on a network.

Claim (eq. 18, docs/THEORY.md §3.4): near a minimum θ* with $L^* > 0$, SGD's stationary law is
$P_{\rm ss}(\theta) \propto L(\theta)^{-\phi}$, $\phi = 1 + B/(\eta h^*)$, with $h^*$ the
minimum's top Hessian eigenvalue. Mori's own check (Fig. 3a) was 1-D linear regression. Here:

- Problem: scikit-learn's breast-cancer set (30 standardised features, n = 455 training samples,
  a share of them with random labels so that the network cannot interpolate, $L^* > 0$),
  labels ±1, a 30-H-1 tanh `eqx.nn.MLP`, MSE $\frac1{2n}\sum(f - y)^2$. θ* by L-BFGS
  (scipy) from eqx's initialisation (`network_minimum`, deterministic, cached). At θ*: L*,
  |∇L|, the top Hessian eigenpairs (Lanczos, `hessian_top_eigenpairs`; $h^* = h_1$, the
  outlier gap is Mori's n), and the decoupling ratio $v_1^{\rm T}C_1v_1/(2L^*h_1)$ (1 in
  Mori's eq. 6, $\Sigma = 2LH^*/B$; $C_1$ the per-sample gradient covariance).
- Dynamics: `MinibatchSGD(replacement=True)` (i.i.d. minibatches: $\Sigma = C_1(\theta)/B$
  exactly), N particles from θ*, positions at `samples` times after a burn-in (a run to step
  t is a prefix of a longer run with the same key, so each time is a fresh `simulate`).
- Estimator (`stationary_exponent`): along the top eigenvector, $z = v_1\cdot(\theta-\theta^*)$,
  the n = 1 law is $P(z) \propto (L^* + \frac12h^*z^2)^{-\phi}$, so
  $w = h^*z^2/(2L^* + h^*z^2) \sim {\rm Beta}(\frac12, \phi - \frac12)$ ([D], as in
  `mori.fit_stationary_exponent`); φ̂ is its maximum-likelihood estimate, with a standard
  error robust to the correlation of one particle's samples (sandwich, clustered by particle).
- References per (η, B): Mori's $1 + B/(\eta h^*)$ (continuous time), and the same estimator on
  Mori's 1-D SDE (13) (`MoriLossNoise` on $L^* + \frac12h^*z^2$) stepped at dt = η, i.e. at
  SGD's own step (same η, B, h*, L*, particles and times): the finite-learning-rate law of
  Mori's model, for which the linearised second moment gives $\phi_\eta \approx
  1 + B/(\eta h^*) - B/2$ ([D]). The network minus this reference is what the network adds
  (decoupling, other directions, non-Gaussian minibatch noise, non-quadratic loss). Two more
  1-D references at dt = η take the network's noise along v₁: at θ* (B → B/r, r the decoupling
  ratio), and as measured along v₁, $v_1^{\rm T}C_1v_1 = 2h^*(aL + bL^*)$ (SGD's covariance
  keeps the $-\nabla L\nabla L^{\rm T}$ term that Mori's eq. 9 drops, $(v_1\cdot\nabla L)^2 =
  2h^*(L - L^*)$ on the quadratic, so a < 1 and b > 0 where the uncentred moment is ∝ L).

A declared experiment: one measurement point per (η, B) (`settings/i`, `sample_stationary`);
`analyse` tabulates φ̂ ± SE against the references, fits φ̂ against B at the main η (slope
against 1/(ηh*)), and draws the densities of $L_z/L^*$, φ̂ against B/(ηh*) and φ̂ against each
reference.
"""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize, special

from .._criteria import NeverEscape
from .._dynamics.noise_models import MoriLossNoise, QuadraticLandscape
from .._engine.driver import simulate
from .._sgd.curvature import hessian_top_eigenpairs
from .._sgd.data import Dataset
from .._sgd.datasets import load_sklearn_dataset
from .._sgd.minibatch_sgd import MinibatchSGD
from .._sgd.networks import NetworkModel
from .._theory.closed_forms import mori_stationary_exponent
from .declared import grouped, reproduction_sweep, run_reproduction, seed_of, timing
from .meng_networks import stored_values
from .tools import check_size, new_figure, output_files, report_header
from .wu_minima import checks_markdown, measurement_options


_MODULE = "jaxescape._reproductions.mori_stationary"
# The minimum: 30-4-1 tanh MLP on all 455 training samples, 30% of them with random labels (an
# under-fitting network: L* > 0, a Hessian with a clear top outlier; measured by `network_minimum`).
_PROBLEM = dict(hidden=4, num_train=455, random_label_fraction=0.3)
# (η, B): B = 1…4 at the main η (φ linear in B, slope 1/(ηh*)), then two other η.
_SETTINGS = ((0.2, 1), (0.2, 2), (0.2, 3), (0.2, 4), (0.1, 1), (0.4, 2))
_MORI_STATIONARY = {
    "smoke": dict(particles=256, burn_in=600, samples=2, spacing=100,
                  settings=((0.2, 1), (0.2, 4))),
    "default": dict(particles=4000, burn_in=2000, samples=4, spacing=250, settings=_SETTINGS),
    "large": dict(particles=20_000, burn_in=4000, samples=8, spacing=500, settings=_SETTINGS),
}
_TOP_EIGENVALUES = 6
# Points θ* + m·s·v₁ (s = √(2L*/h*): L_z = (1 + m²)L*) where noise ∝ loss is checked along v₁.
_PROFILE = (-3.0, -1.0, 1.0, 3.0)
_LANCZOS_ITERATIONS = 60
_LBFGS_ITERATIONS = 20_000
# Agreement: within this many (combined) standard errors.
_SE_TOLERANCE = 4.0


# --------------------------------------------------------------------------------------------
# The estimator


def stationary_exponent(z, flatness: float, minimum_loss: float) -> dict:
    r"""φ̂ of $P(z) \propto (L^* + \frac12h^*z^2)^{-\phi}$ from samples z of shape (K, N): K times
    of N independent particles (a particle's K samples may be correlated).

    $w = h^*z^2/(2L^* + h^*z^2) \sim {\rm Beta}(\frac12, \phi-\frac12)$, so the maximum-likelihood
    φ̂ solves $\psi(\hat\phi-\frac12) - \psi(\hat\phi) = \overline{\log(1-w)}$ ([D]). Standard
    errors: `phi_se`, the sandwich $\sqrt{\sum_p U_p^2}/(M I)$ with $U_p$ particle p's summed
    score, M samples and I the per-sample Fisher information $\psi'(\phi-\frac12)-\psi'(\phi)$
    (robust to within-particle correlation; `phi_se_iid` assumes independent samples).
    Particles with a non-finite sample are left out (`particles_used`).
    """
    if not (flatness > 0 and minimum_loss > 0):
        raise ValueError(f"flatness and minimum_loss must be > 0, got {flatness}, {minimum_loss}")
    z = np.asarray(z, np.float64)
    z = z.reshape(1, -1) if z.ndim == 1 else z
    if z.ndim != 2:
        raise ValueError(f"z must have shape (times, particles), got {z.shape}")
    z = z[:, np.all(np.isfinite(z), axis=0)]
    if z.shape[1] < 2:
        raise ValueError(f"need at least 2 particles with finite samples, got {z.shape[1]}")
    log_ratio = -np.log1p(flatness * z**2 / (2 * minimum_loss))  # log(1 − w) = log(L*/L_z)
    mean = float(np.mean(log_ratio))

    def score(phi):
        return special.digamma(phi - 0.5) - special.digamma(phi) - mean

    upper = 2.0
    while score(upper) < 0:
        upper *= 2
    phi = optimize.brentq(score, 0.5 + 1e-12, upper, xtol=1e-12)
    information = special.polygamma(1, phi - 0.5) - special.polygamma(1, phi)
    scores = special.digamma(phi - 0.5) - special.digamma(phi) - log_ratio
    count = z.size
    return {"phi": float(phi),
            "phi_se": float(math.sqrt(np.sum(scores.sum(0) ** 2)) / (count * information)),
            "phi_se_iid": float(1 / math.sqrt(count * information)),
            "samples": int(count), "particles_used": int(z.shape[1])}


def exponent_density(ratio, phi):
    r"""The density of $u = L_z/L^* = 1 + h^*z^2/(2L^*)$ under the n = 1 law:
    $(1-1/u)^{-1/2}u^{-(\phi+1/2)}/{\rm B}(\frac12, \phi-\frac12)$ (tail slope −(φ + ½))."""
    ratio = np.asarray(ratio, np.float64)
    return ((1 - 1 / ratio) ** -0.5 * ratio ** -(phi + 0.5)
            / math.exp(special.betaln(0.5, phi - 0.5)))


# --------------------------------------------------------------------------------------------
# The minimum


def _problem(hidden, num_train, random_label_fraction, data_seed):
    split = load_sklearn_dataset("breast_cancer", jax.random.key(data_seed), num_train=num_train,
                                 random_label_fraction=random_label_fraction, targets="label")
    train = Dataset(split.train.inputs, 2 * split.train.targets - 1)  # labels ±1
    network = eqx.nn.MLP(30, "scalar", hidden, 1, activation=jnp.tanh,
                         key=jax.random.fold_in(jax.random.key(data_seed), 1))
    return NetworkModel(network, loss="mse"), train


@functools.lru_cache(maxsize=4)
def network_minimum(hidden: int, num_train: int, random_label_fraction: float, data_seed: int):
    r"""(model, training data, θ*, v₁, facts): the MSE minimum of a 30-`hidden`-1 tanh MLP on
    `num_train` breast-cancer samples (labels ±1, a `random_label_fraction` of them redrawn;
    split and labels by key `data_seed`, eqx initialisation by `fold_in(key, 1)`), found by
    scipy's L-BFGS from the initialisation (deterministic; cached).

    facts: `minimum_loss` L*, `gradient_norm` |∇L(θ*)|, `eigenvalues` (the top 6 Hessian
    eigenvalues, Lanczos), `flatness` h* = the top one, `decoupling_ratio`
    $v_1^{\rm T}C_1v_1/(2L^*h^*)$ (Mori's eq. 6 says 1; $C_1 = \frac1n\sum\nabla\ell_\mu
    \nabla\ell_\mu^{\rm T} - \nabla L\nabla L^{\rm T}$), `noise_share_top` (the share of
    ${\rm Tr}\,C_1$ along v₁), `train_accuracy`, `saturated_fraction` (hidden pre-activations
    with |a| > 2), `num_parameters`, `lbfgs_iterations`, and along v₁ at
    θ = θ* + m·√(2L*/h*)·v₁, m ∈ {−3, −1, 1, 3}: `profile_noise` $v_1^{\rm T}C_1(\theta)v_1
    /(2L(\theta)h^*)$ (noise ∝ loss: constant in m) and `profile_loss` $L(\theta)/(L^*(1+m^2))$
    (1 where the loss is quadratic along v₁), and `profile_uncentred`, the same ratio without
    the $-\nabla L\nabla L^{\rm T}$ term of $C_1$ (which Mori's eq. 9 drops); `noise_slope` a and
    `noise_offset` b of the least-squares line $v_1^{\rm T}C_1v_1 = 2h^*(aL + bL^*)$ through θ*
    and those points (Mori: a = 1, b = 0).
    """
    model, train = _problem(int(hidden), int(num_train), float(random_label_fraction),
                            int(data_seed))

    def loss(theta):
        return model.loss(theta, train)

    value_and_grad = jax.jit(jax.value_and_grad(loss))

    def objective(x):
        value, gradient = value_and_grad(jnp.asarray(x, train.inputs.dtype))
        return float(value), np.asarray(gradient, np.float64)

    found = optimize.minimize(objective, np.asarray(model.initial_parameters, np.float64),
                              jac=True, method="L-BFGS-B",
                              options=dict(maxiter=_LBFGS_ITERATIONS, gtol=1e-9, ftol=1e-15))
    theta = jnp.asarray(found.x, train.inputs.dtype)
    values, vectors = hessian_top_eigenpairs(loss, theta, _TOP_EIGENVALUES,
                                             jax.random.key(data_seed),
                                             num_iterations=_LANCZOS_ITERATIONS)
    top = np.asarray(vectors[0], np.float64)
    minimum_loss = float(loss(theta))
    gradients = np.asarray(jax.vmap(jax.grad(model.per_sample_loss), (None, 0, 0))(
        theta, train.inputs, train.targets), np.float64)
    centred = gradients - gradients.mean(0)
    along = centred @ top
    scale = math.sqrt(2 * minimum_loss / float(values[0]))  # L_z = 2L* at z = scale
    profile = {"noise": [], "uncentred": [], "loss": []}
    for multiple in _PROFILE:
        shifted = theta + (multiple * scale * top).astype(theta.dtype)
        shifted_loss = float(loss(shifted))
        moved = np.asarray(jax.vmap(jax.grad(model.per_sample_loss), (None, 0, 0))(
            shifted, train.inputs, train.targets), np.float64) @ top
        profile["noise"].append(float(np.var(moved) / (2 * shifted_loss * values[0])))
        profile["uncentred"].append(float(np.mean(moved**2) / (2 * shifted_loss * values[0])))
        profile["loss"].append(shifted_loss / (minimum_loss * (1 + multiple**2)))
    # v₁ᵀC₁v₁ = 2h*(a·L + b·L*) fitted through θ* and the profile points (Mori: a = 1, b = 0).
    ratios = np.concatenate([[1.0], 1 + np.square(_PROFILE)])  # L/L* (quadratic along v₁)
    noises = np.concatenate([[np.mean(along**2) / (2 * minimum_loss * values[0])],
                             np.array(profile["noise"]) * ratios[1:]])
    slope_a, offset_b = np.polyfit(ratios, noises, 1)
    layer = model.unflatten(theta).layers[0]
    activations = np.asarray(train.inputs @ layer.weight.T + layer.bias)
    facts = {"minimum_loss": minimum_loss,
             "gradient_norm": float(jnp.linalg.norm(jax.grad(loss)(theta))),
             "eigenvalues": np.asarray(values, np.float64), "flatness": float(values[0]),
             "decoupling_ratio": float(np.mean(along**2) / (2 * minimum_loss * values[0])),
             "noise_share_top": float(np.mean(along**2) / np.mean(np.sum(centred**2, 1))),
             "train_accuracy": float(model.accuracy(theta, train)),
             "saturated_fraction": float(np.mean(np.abs(activations) > 2)),
             **{f"profile_{name}": np.array(value) for name, value in profile.items()},
             "noise_slope": float(slope_a), "noise_offset": float(offset_b),
             "num_parameters": int(theta.shape[0]), "lbfgs_iterations": int(found.nit)}
    return model, train, theta, top, facts


# --------------------------------------------------------------------------------------------
# The measurement


def sample_times(burn_in: int, samples: int, spacing: int) -> np.ndarray:
    """The sampling steps burn_in + k·spacing, k < samples (even: SGD runs two steps a loop)."""
    for name, value, lower in (("burn_in", burn_in, 2), ("samples", samples, 1),
                               ("spacing", spacing, 2)):
        if isinstance(value, bool) or int(value) != value or value < lower:
            raise ValueError(f"{name} must be an integer >= {lower}, got {value!r}")
    times = int(burn_in) + int(spacing) * np.arange(int(samples))
    return 2 * (times // 2)


@eqx.filter_jit
def _losses(model, data, positions):
    return jax.lax.map(lambda theta: model.loss(theta, data), positions)


def sample_stationary(key, learning_rate: float, batch_size: int, particles: int, burn_in: int,
                      samples: int, spacing: int, hidden: int, num_train: int,
                      random_label_fraction: float, data_seed: int, progress=False) -> dict:
    r"""One setting (η, B): N = `particles` SGD runs (i.i.d. minibatches of B, rate η) from the
    minimum θ* of `network_minimum`, sampled at `sample_times(burn_in, samples, spacing)`; and
    the 1-D references, Mori's SDE (13) on $L^* + \frac12h^*z^2$ at dt = η (key fold_in(key, 1)).

    Arrays (times, N): `z` = v₁·(θ − θ*), `loss` L(θ), `distance` |θ − θ*|, `z_reference`, and
    `z_decoupled` (the same SDE with B/r, r = v₁ᵀC₁v₁/(2L*h*) measured: Mori's model with the
    network's noise along v₁ at θ*), `z_covariance` (the SDE with the fitted noise along v₁,
    $2h^*(aL + bL^*)/B$, `network_minimum`); NaN where a run diverged. Scalars: the minimum's
    facts, φ̂ ± SE of the network and of the first reference (`stationary_exponent`), Mori's φ.
    """
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    times = sample_times(burn_in, samples, spacing)
    model, train, theta, top, facts = network_minimum(int(hidden), int(num_train),
                                                      float(random_label_fraction),
                                                      int(data_seed))
    if not 1 <= int(batch_size) <= train.inputs.shape[0]:
        raise ValueError(f"batch_size must be between 1 and {train.inputs.shape[0]}, got "
                         f"{batch_size}")
    flatness, minimum_loss = facts["flatness"], facts["minimum_loss"]
    if not facts["noise_slope"] > 0:
        raise ValueError(f"the noise along v₁ does not grow with the loss at this minimum (fitted "
                         f"a = {facts['noise_slope']:.3g}): no 1-D reference aL + bL*")
    sgd = MinibatchSGD(model, train, batch_size=int(batch_size),
                       learning_rate=float(learning_rate), replacement=True)
    landscape = QuadraticLandscape([[flatness]], [0.0], minimum_loss)
    references = {
        "z_reference": MoriLossNoise(landscape, float(learning_rate), float(batch_size)),
        # Mori's noise scaled by the measured v₁ᵀC₁v₁/(2L*h*): an effective B/ratio.
        "z_decoupled": MoriLossNoise(landscape, float(learning_rate),
                                     float(batch_size) / facts["decoupling_ratio"]),
        # D = (η h*/B)(aL + bL*) = (η h*/(B/a))·(L + (b/a)L*): Mori's SDE on L + (b/a)L*.
        "z_covariance": MoriLossNoise(
            QuadraticLandscape([[flatness]], [0.0],
                               minimum_loss * (1 + facts["noise_offset"] / facts["noise_slope"])),
            float(learning_rate), float(batch_size) / facts["noise_slope"])}
    start = np.asarray(theta, np.float64)
    z, loss, distance, diverged = [], [], [], np.zeros(int(particles), bool)
    one_d = {name: [] for name in references}
    for step in times:
        label = f"{progress} (t = {step})" if progress else False
        result = simulate(sgd, NeverEscape(), theta, key, num_particles=int(particles),
                          max_steps=int(step), progress=label)
        positions = np.asarray(result.position, np.float64)
        bad = np.asarray(result.diverged) | ~np.all(np.isfinite(positions), axis=1)
        diverged |= bad
        offsets = positions - start
        finite = np.where(bad[:, None], start, positions).astype(np.asarray(theta).dtype)
        z.append(np.where(bad, np.nan, offsets @ top))
        loss.append(np.where(bad, np.nan, np.asarray(_losses(model, train, finite), np.float64)))
        distance.append(np.where(bad, np.nan, np.linalg.norm(offsets, axis=1)))
        for name, reference in references.items():
            result = simulate(reference, NeverEscape(), jnp.zeros(1), jax.random.fold_in(key, 1),
                              num_particles=int(particles), dt=float(learning_rate),
                              max_steps=int(step))
            one_d[name].append(np.where(np.asarray(result.diverged), np.nan,
                                        np.asarray(result.position, np.float64)[:, 0]))
    z = np.array(z)
    one_d = {name: np.array(values) for name, values in one_d.items()}
    network = stationary_exponent(z, flatness, minimum_loss)
    reference = stationary_exponent(one_d["z_reference"], flatness, minimum_loss)
    arrays = {name: value for name, value in facts.items() if isinstance(value, np.ndarray)}
    scalars = {name: value for name, value in facts.items() if name not in arrays}
    return {"steps": times, "z": z, "loss": np.array(loss), "distance": np.array(distance),
            **one_d, "diverged": diverged, **arrays, "num_diverged": int(diverged.sum()),
            **scalars, "phi": network["phi"], "phi_se": network["phi_se"],
            "phi_reference": reference["phi"], "phi_reference_se": reference["phi_se"],
            "phi_mori": float(mori_stationary_exponent(learning_rate, batch_size, flatness))}


# --------------------------------------------------------------------------------------------
# The declared experiment


def sweep(size: str = "default", seed: int = 0):
    """The reproduction's points: `settings/i`, one per (η, B)."""
    check_size(size)
    config = _MORI_STATIONARY[size]
    options = {name: config[name] for name in ("particles", "burn_in", "samples", "spacing")}
    points = [{"label": f"settings/{index}", "method": "measure",
               "measurement": {"name": f"{_MODULE}:sample_stationary",
                               "learning_rate": float(eta), "batch_size": int(batch),
                               "data_seed": int(seed), **_PROBLEM, **options}}
              for index, (eta, batch) in enumerate(config["settings"])]
    return reproduction_sweep("mori-stationary", size, seed, points, extrapolate=False)


def reproduce_mori_stationary(output_dir, size="default", seed=0, progress=True) -> dict:
    r"""Mori et al. eq. (18) on a network: SGD's stationary law near an MSE minimum, ∝ L^−φ.

    θ* of a 30-4-1 tanh MLP on breast cancer (455 samples, 30% random labels, ±1, MSE;
    `network_minimum`); real SGD with i.i.d. minibatches at (η, B) ∈ {(0.2, 1…4), (0.1, 1),
    (0.4, 2)} (smoke (0.2, 1), (0.2, 4)), N = 4000 runs from θ* (smoke 256, large 20000),
    sampled at 4 times from step 2000 every 250 (smoke 2 from 600 every 100; large 8 from 4000
    every 500); φ̂ ± SE along the top Hessian eigenvector (`stationary_exponent`) against
    $1 + B/(\eta h^*)$ and against Mori's 1-D SDE at dt = η; the slope of φ̂ in B against
    1/(ηh*) (docs/THEORY.md §3.4).

    A declared experiment: `sweep(size, seed)` run into `output_dir` (resumable), then `analyse`.
    """
    return run_reproduction(sweep(size, seed), output_dir, progress)


def weighted_slope(x, y, standard_error) -> tuple[float, float]:
    """Weighted least-squares slope of y against x (weights 1/SE²) and its SE (from the SEs)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    weights = 1 / np.asarray(standard_error, np.float64) ** 2
    design = np.vstack([np.ones_like(x), x]).T
    covariance = np.linalg.inv(design.T @ (weights[:, None] * design))
    coefficients = covariance @ design.T @ (weights * y)
    return float(coefficients[1]), float(math.sqrt(covariance[1, 1]))


def setting_summary(options: dict, values: dict) -> dict:
    """One stored setting: φ̂ (pooled and per time) against the references, and the loss."""
    flatness, minimum_loss = float(values["flatness"]), float(values["minimum_loss"])
    eta, batch = float(options["learning_rate"]), int(options["batch_size"])
    z, reference = np.asarray(values["z"]), np.asarray(values["z_reference"])
    network = stationary_exponent(z, flatness, minimum_loss)
    one_d = stationary_exponent(reference, flatness, minimum_loss)
    decoupled = stationary_exponent(np.asarray(values["z_decoupled"]), flatness, minimum_loss)
    covariance = stationary_exponent(np.asarray(values["z_covariance"]), flatness, minimum_loss)
    first = stationary_exponent(z[:1], flatness, minimum_loss)
    last = stationary_exponent(z[-1:], flatness, minimum_loss)
    mori = float(mori_stationary_exponent(eta, batch, flatness))
    loss = np.asarray(values["loss"])
    ratio = loss / minimum_loss
    along = 0.5 * flatness * z**2 / np.maximum(loss - minimum_loss, 1e-30)
    finite = np.isfinite(ratio)
    return {
        "learning_rate": eta, "batch_size": batch, "eta_h": eta * flatness,
        "x": batch / (eta * flatness), "phi_mori": mori,
        "phi_linearised": mori - batch / 2,
        "phi": network["phi"], "phi_se": network["phi_se"], "phi_se_iid": network["phi_se_iid"],
        "phi_reference": one_d["phi"], "phi_reference_se": one_d["phi_se"],
        "phi_decoupled": decoupled["phi"], "phi_decoupled_se": decoupled["phi_se"],
        "deviation_decoupled_in_se": (network["phi"] - decoupled["phi"])
        / math.hypot(network["phi_se"], decoupled["phi_se"]),
        "phi_covariance": covariance["phi"], "phi_covariance_se": covariance["phi_se"],
        "deviation_covariance_in_se": (network["phi"] - covariance["phi"])
        / math.hypot(network["phi_se"], covariance["phi_se"]),
        "phi_first": first["phi"], "phi_first_se": first["phi_se"],
        "phi_last": last["phi"], "phi_last_se": last["phi_se"],
        "deviation_mori_in_se": (network["phi"] - mori) / network["phi_se"],
        "deviation_reference_in_se": (network["phi"] - one_d["phi"])
        / math.hypot(network["phi_se"], one_d["phi_se"]),
        "drift_in_se": (last["phi"] - first["phi"]) / math.hypot(first["phi_se"],
                                                                  last["phi_se"]),
        "samples": network["samples"], "particles": network["particles_used"],
        "diverged": int(np.sum(values["diverged"])),
        "loss_ratio_quantiles": np.quantile(ratio[finite], [0.5, 0.9, 0.99]).tolist(),
        "excess_along_top_median": float(np.median(along[finite])),
        "distance_median": float(np.nanmedian(values["distance"])),
    }


def analyse(run, size: str = "default") -> dict[str, bytes]:
    """The table of φ̂ against the references, the slope in B, the checks, report and figure."""
    seed = seed_of(run)
    records = grouped(run)["settings"]
    config = measurement_options(records[0])
    arrays = [stored_values(run, record) for record in records]
    settings = [setting_summary(measurement_options(record), values)
                for record, values in zip(records, arrays)]
    facts = arrays[0]
    flatness, minimum_loss = float(facts["flatness"]), float(facts["minimum_loss"])
    main_eta = settings[0]["learning_rate"]
    main = [row for row in settings if row["learning_rate"] == main_eta]
    slope = None
    if len({row["batch_size"] for row in main}) >= 2:
        fitted = weighted_slope([r["batch_size"] for r in main], [r["phi"] for r in main],
                                [r["phi_se"] for r in main])
        reference = weighted_slope([r["batch_size"] for r in main],
                                   [r["phi_reference"] for r in main],
                                   [r["phi_reference_se"] for r in main])
        covariance = weighted_slope([r["batch_size"] for r in main],
                                    [r["phi_covariance"] for r in main],
                                    [r["phi_covariance_se"] for r in main])
        decoupled = weighted_slope([r["batch_size"] for r in main],
                                   [r["phi_decoupled"] for r in main],
                                   [r["phi_decoupled_se"] for r in main])
        predicted = 1 / (main_eta * flatness)
        slope = {"learning_rate": main_eta, "slope": fitted[0], "slope_se": fitted[1],
                 "reference_slope": reference[0], "reference_slope_se": reference[1],
                 "decoupled_slope": decoupled[0], "decoupled_slope_se": decoupled[1],
                 "covariance_slope": covariance[0], "covariance_slope_se": covariance[1],
                 "predicted_slope": predicted, "linearised_slope": predicted - 0.5,
                 "ratio_to_predicted": fitted[0] / predicted}
    checks = {}
    tolerance = f"{_SE_TOLERANCE:g} SE"
    for row in settings:
        name = f"η = {row['learning_rate']:g}, B = {row['batch_size']}"
        checks[f"{name}: φ̂ at the first and last sampling time within {tolerance} (stationary)"] \
            = bool(abs(row["drift_in_se"]) <= _SE_TOLERANCE)
        checks[f"{name}: φ̂ within {tolerance} of the 1-D SDE at dt = η"] = bool(
            abs(row["deviation_reference_in_se"]) <= _SE_TOLERANCE)
        checks[f"{name}: φ̂ within {tolerance} of the 1-D SDE at dt = η with the measured "
               "noise along v₁"] = bool(abs(row["deviation_decoupled_in_se"]) <= _SE_TOLERANCE)
        checks[f"{name}: φ̂ within {tolerance} of the 1-D SDE at dt = η with the fitted "
               "noise 2h*(aL + bL*) along v₁"] = bool(
            abs(row["deviation_covariance_in_se"]) <= _SE_TOLERANCE)
        checks[f"{name}: φ̂ within {tolerance} of Mori's 1 + B/(ηh*)"] = bool(
            abs(row["deviation_mori_in_se"]) <= _SE_TOLERANCE)
    if slope is not None:
        checks[f"slope of φ̂ in B at η = {main_eta:g} within {tolerance} of 1/(ηh*)"] = bool(
            abs(slope["slope"] - slope["predicted_slope"]) <= _SE_TOLERANCE * slope["slope_se"])
        checks[f"slope of φ̂ in B at η = {main_eta:g} within {tolerance} of the 1-D SDE's at "
               "dt = η"] = bool(abs(slope["slope"] - slope["reference_slope"]) <= _SE_TOLERANCE
                                * math.hypot(slope["slope_se"], slope["reference_slope_se"]))
        checks[f"slope of φ̂ in B at η = {main_eta:g} within {tolerance} of the 1-D SDE's at "
               "dt = η with the measured noise along v₁"] = bool(
            abs(slope["slope"] - slope["decoupled_slope"]) <= _SE_TOLERANCE
            * math.hypot(slope["slope_se"], slope["decoupled_slope_se"]))
        checks[f"slope of φ̂ in B at η = {main_eta:g} within {tolerance} of the 1-D SDE's at "
               "dt = η with the fitted noise along v₁"] = bool(
            abs(slope["slope"] - slope["covariance_slope"]) <= _SE_TOLERANCE
            * math.hypot(slope["slope_se"], slope["covariance_slope_se"]))
    eigenvalues = np.asarray(facts["eigenvalues"], np.float64)
    minimum = {key: float(facts[key]) for key in (
        "minimum_loss", "gradient_norm", "flatness", "decoupling_ratio", "noise_share_top",
        "train_accuracy", "saturated_fraction", "noise_slope", "noise_offset")}
    minimum.update(eigenvalues=eigenvalues.tolist(), num_parameters=int(facts["num_parameters"]),
                   lbfgs_iterations=int(facts["lbfgs_iterations"]), profile_multiples=_PROFILE,
                   profile_noise=np.asarray(facts["profile_noise"]).tolist(),
                   profile_loss=np.asarray(facts["profile_loss"]).tolist(),
                   profile_uncentred=np.asarray(facts["profile_uncentred"]).tolist())
    spent = timing(run)
    summary = dict(name="mori-stationary", size=size, seed=seed, minimum=minimum,
                   settings=settings, slope=slope, checks=checks,
                   all_passed=all(checks.values()), wall_seconds=spent.wall,
                   network=(f"30-{config['hidden']}-1 tanh MLP, MSE on ±1 breast-cancer labels "
                            f"(n = {config['num_train']}, "
                            f"{config['random_label_fraction']:g} random)"),
                   steps=[int(step) for step in np.asarray(facts["steps"])],
                   particles=config["particles"])
    lines = report_header("Mori et al. eq. (18): SGD's stationary law near a network minimum",
                          size, seed, spent, [], run.environment.get("device_kind"),
                          times="Times are SGD iterations.")
    lines += [
        f"Minimum: {summary['network']}, {minimum['num_parameters']} parameters, L-BFGS "
        f"({minimum['lbfgs_iterations']} iterations): L* = {minimum_loss:.4g}, |∇L| = "
        f"{minimum['gradient_norm']:.2g}, training accuracy {minimum['train_accuracy']:.3f}, "
        f"hidden pre-activations with |a| > 2: {minimum['saturated_fraction']:.2f}. Top Hessian "
        "eigenvalues (Lanczos): " + ", ".join(f"{value:.4g}" for value in eigenvalues)
        + f"; h* = {flatness:.4g}. Decoupling along v₁: v₁ᵀC₁v₁/(2L*h*) = "
        f"{minimum['decoupling_ratio']:.3f} (Mori: 1); share of Tr C₁ along v₁: "
        f"{minimum['noise_share_top']:.3f}. Along v₁ at θ* + m·√(2L*/h*)·v₁, m = "
        + ", ".join(f"{m:g}" for m in _PROFILE) + ": v₁ᵀC₁v₁/(2L(θ)h*) = "
        + ", ".join(f"{value:.3f}" for value in minimum["profile_noise"])
        + " (noise ∝ loss: constant); without the −∇L∇Lᵀ term of C₁ (dropped by Mori's eq. 9): "
        + ", ".join(f"{value:.3f}" for value in minimum["profile_uncentred"])
        + "; L(θ)/(L*(1 + m²)) = "
        + ", ".join(f"{value:.3f}" for value in minimum["profile_loss"])
        + f" (quadratic: 1). Fitted noise along v₁: v₁ᵀC₁v₁ = 2h*(aL + bL*), a = "
        f"{minimum['noise_slope']:.3f}, b = {minimum['noise_offset']:.3f} (Mori: 1, 0).", "",
        f"{config['particles']} SGD runs per setting (i.i.d. minibatches) from θ*, sampled at "
        f"steps {', '.join(str(step) for step in summary['steps'])}; φ̂ ± SE (clustered by "
        "particle) of P(z) ∝ (L* + h*z²/2)^−φ, z = v₁·(θ − θ*). References: Mori's "
        "1 + B/(ηh*); Mori's 1-D SDE at SGD's step dt = η (same estimator, same particles "
        "and times), with Mori's noise (1-D) and with the network's measured noise along v₁ "
        "at θ* (1-D, C₁(θ*): B → B/r, r the decoupling ratio) and with the fitted noise "
        "along v₁ (1-D, aL + bL*); the linearised finite-η value "
        "1 + B/(ηh*) − B/2 [D]. Deviations in units of the combined SE.", "",
        "| η | B | ηh* | φ Mori | φ̂ network ± SE | (φ̂ − Mori)/SE | φ̂ 1-D ± SE | "
        "(φ̂ − 1-D)/SE | φ̂ 1-D, C₁(θ*) ± SE | (φ̂ − 1-D, C₁(θ*))/SE | φ̂ 1-D, aL + bL* ± SE "
        "| (φ̂ − 1-D, aL + bL*)/SE | 1 + B/(ηh*) − B/2 | φ̂ first / last time | "
        "L/L* median, 90%, 99% | median \\|θ − θ*\\| | diverged |", "|" + "---|" * 17]
    for row in settings:
        quantiles = ", ".join(f"{value:.3g}" for value in row["loss_ratio_quantiles"])
        lines.append(
            f"| {row['learning_rate']:g} | {row['batch_size']} | {row['eta_h']:.3f} | "
            f"{row['phi_mori']:.3f} | {row['phi']:.3f} ± {row['phi_se']:.3f} | "
            f"{row['deviation_mori_in_se']:.1f} | {row['phi_reference']:.3f} ± "
            f"{row['phi_reference_se']:.3f} | {row['deviation_reference_in_se']:.1f} | "
            f"{row['phi_decoupled']:.3f} ± {row['phi_decoupled_se']:.3f} | "
            f"{row['deviation_decoupled_in_se']:.1f} | "
            f"{row['phi_covariance']:.3f} ± {row['phi_covariance_se']:.3f} | "
            f"{row['deviation_covariance_in_se']:.1f} | "
            f"{row['phi_linearised']:.3f} | {row['phi_first']:.2f} / {row['phi_last']:.2f} | "
            f"{quantiles} | {row['distance_median']:.3g} | {row['diverged']} |")
    if slope is not None:
        lines += ["", f"Slope of φ̂ against B at η = {main_eta:g}: **{slope['slope']:.3f} ± "
                  f"{slope['slope_se']:.3f}**; Mori 1/(ηh*) = {slope['predicted_slope']:.3f} "
                  f"(ratio {slope['ratio_to_predicted']:.3f}); 1-D SDE at dt = η "
                  f"{slope['reference_slope']:.3f} ± {slope['reference_slope_se']:.3f}, with "
                  f"the measured noise along v₁ {slope['decoupled_slope']:.3f} ± "
                  f"{slope['decoupled_slope_se']:.3f}, with the fitted noise "
                  f"{slope['covariance_slope']:.3f} ± {slope['covariance_slope_se']:.3f}; "
                  f"linearised 1/(ηh*) − 1/2 = {slope['linearised_slope']:.3f}."]
    lines += checks_markdown(checks)
    figure = _figure(settings, arrays, flatness, minimum_loss)
    return output_files("mori-stationary", summary, lines + [""], figure)


def _figure(settings, arrays, flatness, minimum_loss):
    from .wu_minima import plain_log_axes

    figure, axes = new_figure(3)
    density, exponents, compare = axes
    shown = sorted({0, len(settings) // 2, len(settings) - 1})
    for colour, index in enumerate(shown):
        row, values = settings[index], arrays[index]
        z = np.asarray(values["z"]).ravel()
        ratio = 1 + flatness * z[np.isfinite(z)] ** 2 / (2 * minimum_loss)
        edges = np.geomspace(1.001, max(ratio.max(), 1.01), 40)
        counts, _ = np.histogram(ratio, edges)
        centres, widths = np.sqrt(edges[1:] * edges[:-1]), np.diff(edges)
        keep = counts > 0
        density.plot(centres[keep], counts[keep] / (ratio.size * widths[keep]), "o", ms=3,
                     color=f"C{colour}", label=f"η = {row['learning_rate']:g}, B = "
                     f"{row['batch_size']}: φ̂ = {row['phi']:.2f}")
        grid = np.geomspace(1.001, edges[-1], 200)
        density.plot(grid, exponent_density(grid, row["phi"]), "-", color=f"C{colour}", lw=1)
        density.plot(grid, exponent_density(grid, row["phi_mori"]), "--", color=f"C{colour}",
                     lw=1)
    density.set_xlabel("L_z / L* = 1 + h* z² / (2L*)")
    density.set_ylabel("density")
    density.set_title("network SGD along v₁ (solid: fitted φ̂, dashed: Mori's φ)", fontsize=9)
    plain_log_axes(density)
    density.legend(fontsize=7)
    x = np.array([row["x"] for row in settings])
    grid = np.linspace(0, x.max() * 1.1, 50)
    exponents.plot(grid, 1 + grid, "k--", lw=1, label="Mori: 1 + B/(ηh*)")
    exponents.plot(grid, 1 + grid - grid * settings[0]["eta_h"] / 2, ":", color="0.5", lw=1,
                   label=f"1 + B/(ηh*) − B/2 [D], ηh* = {settings[0]['eta_h']:.2f}")
    kinds = (("phi", "C0", "network SGD"), ("phi_reference", "C1", "1-D SDE, dt = η"),
             ("phi_decoupled", "C3", "1-D, dt = η, noise C₁(θ*)"),
             ("phi_covariance", "C2", "1-D, dt = η, noise 2h*(aL + bL*)"))
    etas = sorted({row["learning_rate"] for row in settings})
    markers = dict(zip(etas, "osd^v"))
    for name, colour, label in kinds:
        for eta in etas:
            rows = [row for row in settings if row["learning_rate"] == eta]
            exponents.errorbar([r["x"] for r in rows], [r[name] for r in rows],
                               yerr=[r[f"{name}_se"] for r in rows], fmt=markers[eta],
                               color=colour, ms=4 if name == "phi" else 6,
                               mfc=colour if name == "phi" else "none",
                               label=label if eta == etas[0] else None)
        if name != "phi":
            compare.errorbar([r[name] for r in settings], [r["phi"] for r in settings],
                             xerr=[r[f"{name}_se"] for r in settings],
                             yerr=[r["phi_se"] for r in settings], fmt="o", color=colour, ms=4,
                             label=label)
    compare.errorbar([r["phi_mori"] for r in settings], [r["phi"] for r in settings],
                     yerr=[r["phi_se"] for r in settings], fmt="x", color="k", ms=5,
                     label="Mori 1 + B/(ηh*)")
    exponents.set_xlabel("B / (η h*)   (markers: η = " + ", ".join(
        f"{eta:g} {markers[eta]}" for eta in etas) + ")")
    exponents.set_ylabel("φ")
    exponents.set_title("stationary exponent against B/(ηh*)", fontsize=9)
    exponents.legend(fontsize=6, loc="upper left")
    top = max(max(r["phi_mori"] for r in settings), max(r["phi"] for r in settings)) * 1.05
    compare.plot([1, top], [1, top], "k-", lw=0.8)
    compare.set_xlabel("reference φ")
    compare.set_ylabel("network φ̂")
    compare.set_title("network φ̂ against each reference (line: equal)", fontsize=9)
    compare.legend(fontsize=6, loc="upper left")
    figure.tight_layout()
    return figure
