r"""Meng et al.'s proposal as an optax transformation: state-dependent noise for large-batch SGD.

Meng et al. model the SGD noise covariance near a minimum as $C = \sigma + 2\kappa[L - L^*]$
(docs/THEORY.md §4.2; the proposal to add such noise to large-batch SGD is §4.1/§4.5 [V-abs], its
exact form [R]). `loss_dependent_noise` adds to the updates

$$\eta\,\sqrt{\sigma + 2\kappa\max(L_B - L^*, 0)}\;\zeta,\qquad \zeta \sim N(0, I),$$

a per-step covariance $\eta^2(\sigma + 2\kappa[L_B - L^*])$: the same as SGD's own $\eta^2\Sigma$
(§1.2), i.e. the SDE diffusion $D = \frac\eta2(\sigma + 2\kappa[L - L^*])$ of `MengPowerLawNoise`.
$L_B$ is the minibatch loss the optimizer is given as `value`; ζ arrives as the extra argument
`noise` (`MinibatchSGD(..., optimizer_noise=True)` passes both), so the noise stays a pure function
of (key, particle, step).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class LossDependentNoiseState(NamedTuple):
    """No state: the normals arrive with each update."""


def loss_dependent_noise(learning_rate, sigma, kappa, minimum_loss
                         ) -> optax.GradientTransformationExtraArgs:
    r"""Adds $\eta\sqrt{\sigma + 2\kappa\max(\text{value} - L^*, 0)}\cdot\text{noise}$ to updates.

    **Arguments:**

    - `learning_rate`: η > 0.
    - `sigma`: σ >= 0, the noise covariance at the minimum (per unit η², as SGD's Σ).
    - `kappa`: κ >= 0, its growth with the loss.
    - `minimum_loss`: L*, the loss at the minimum.

    The update takes the keyword arguments `value` (the minibatch loss, a scalar) and `noise`
    (standard normals shaped like the updates).
    """

    def init(params):
        del params
        return LossDependentNoiseState()

    def update(updates, state, params=None, *, value, noise, **extra_args):
        del params, extra_args
        excess = jnp.maximum(value - minimum_loss, 0.0)
        scale = learning_rate * jnp.sqrt(jnp.maximum(sigma + 2 * kappa * excess, 0.0))
        noisy = jax.tree.map(lambda update, normal: update + (scale * normal).astype(update.dtype),
                             updates, noise)
        return noisy, state

    return optax.GradientTransformationExtraArgs(init, update)


def noisy_sgd(learning_rate, sigma, kappa, minimum_loss) -> optax.GradientTransformationExtraArgs:
    r"""Plain SGD plus Meng's loss-dependent noise: $\theta \mathrel{-}= \eta\nabla L_B$, then
    $\theta \mathrel{+}= \eta\sqrt{\sigma + 2\kappa\max(L_B - L^*, 0)}\,\zeta$.

    A module-level factory, so `MinibatchSGD(..., optimizer=noisy_sgd, learning_rate=η,
    optimizer_options={"sigma": σ, "kappa": κ, "minimum_loss": L*}, optimizer_noise=True)` sweeps
    η, σ, κ without recompiling.
    """
    return optax.chain(
        optax.with_extra_args_support(optax.sgd(learning_rate)),
        loss_dependent_noise(learning_rate, sigma, kappa, minimum_loss),
    )
