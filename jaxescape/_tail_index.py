r"""The tail index α of heavy-tailed samples (NumPy): the block-sum estimator of Mohammadi,
Mohammadpour & Ogata (2015), as Şimşekli, Sagun & Gürbüzbalaban (2019) use it on SGD's gradient
noise.

For K = K₁K₂ samples $X_j$ and the K₂ block sums $Y_i = \sum_{j=1}^{K_1} X_{(i-1)K_1 + j}$,

$$\widehat{1/\alpha} = \frac{1}{\log K_1}\Big(\frac{1}{K_2}\sum_{i=1}^{K_2}\log|Y_i|
  - \frac{1}{K}\sum_{j=1}^{K}\log|X_j|\Big)$$

(Mohammadi et al. 2015, Cor. 2.4; Şimşekli et al. 2019, eq. 7). For SαS samples a block sum is
$K_1^{1/\alpha}X$ in law, so the estimate of 1/α is unbiased; it also holds for samples in the
domain of attraction of an α-stable law as K₁ → ∞.
"""

import math
from typing import NamedTuple

import numpy as np


class TailIndexEstimate(NamedTuple):
    """`alpha` = 1/`inverse_alpha`, with standard errors (`alpha_se` by the delta method)."""

    alpha: float
    alpha_se: float
    inverse_alpha: float
    inverse_alpha_se: float
    block_size: int
    num_blocks: int


def tail_index(samples, block_size: int | None = None, *,
               columns: bool = False) -> TailIndexEstimate:
    r"""The tail index α of i.i.d. symmetric samples by the block-sum estimator (module docstring).

    The estimate of 1/α is the mean over blocks of $d_i = (\log|Y_i| - \frac{1}{K_1}\sum_{j \in
    i}\log|X_j|)/\log K_1$, which are independent, so its standard error is their standard
    deviation over $\sqrt{K_2}$. Samples past the last full block are dropped.

    **Arguments:**

    - `samples`: the samples X_j, any shape (flattened in order: consecutive samples form a
      block, so pass them in the order drawn), finite and nonzero; at least 16.
    - `block_size`: K₁ >= 2; default ⌊√K⌋ (Şimşekli et al.'s choice).
    - `columns`: samples of shape (K, m) are m series of K i.i.d. draws each, possibly
      dependent on one another and of different scales (the coordinates of K independent
      gradient-noise vectors): blocks run down each column, and each block's term is the mean
      of d_i over the m columns, so the standard error over the K₂ blocks holds whatever the
      columns' dependence.

    **Returns:** a `TailIndexEstimate`.
    """
    samples = np.asarray(samples, np.float64)
    if columns and samples.ndim != 2:
        raise ValueError(f"samples must have shape (K, m) with columns=True, got {samples.shape}")
    samples = samples if columns else samples.reshape(-1, 1)
    if samples.shape[0] < 16 or samples.size == 0:
        raise ValueError(f"samples must hold at least 16 values (rows with columns=True), got "
                         f"{samples.shape[0]}")
    if not np.all(np.isfinite(samples)) or np.any(samples == 0):
        raise ValueError("samples must be finite and nonzero (their logs are taken)")
    length = samples.shape[0]
    if block_size is None:
        block_size = math.isqrt(length)
    if not 2 <= block_size <= length // 2:
        raise ValueError(
            f"block_size must lie between 2 and {length // 2} (two blocks at least), got "
            f"{block_size}"
        )
    num_blocks = length // block_size
    blocks = samples[: num_blocks * block_size].reshape(num_blocks, block_size, -1)
    terms = ((np.log(np.abs(blocks.sum(axis=1))) - np.log(np.abs(blocks)).mean(axis=1)
              ) / math.log(block_size)).mean(axis=1)
    inverse = float(terms.mean())
    inverse_se = float(terms.std(ddof=1) / math.sqrt(num_blocks))
    return TailIndexEstimate(1 / inverse, inverse_se / inverse**2, inverse, inverse_se,
                             int(block_size), int(num_blocks))


def hill_tail_index(samples, num_largest: int) -> TailIndexEstimate:
    r"""Hill's (1975) estimator of the tail index from the k = `num_largest` largest |X|:
    $1/\hat\alpha = \frac1k\sum_{i=1}^{k}\log(|X|_{(i)}/|X|_{(k+1)})$, standard error
    $\hat\alpha/\sqrt k$. Unlike the block-sum estimator it needs no stable law: it estimates
    the index of any power-law tail $P(|X| > x) \sim C x^{-\alpha}$ (also α > 2), with a
    second-order bias when k is a large share of the samples.

    **Arguments:** `samples` (any shape, finite); `num_largest`: k, between 2 and the number
    of nonzero samples − 1.

    **Returns:** a `TailIndexEstimate` (block_size 1, num_blocks k).
    """
    magnitudes = np.abs(np.asarray(samples, np.float64).reshape(-1))
    if not np.all(np.isfinite(magnitudes)):
        raise ValueError("samples must be finite")
    magnitudes = magnitudes[magnitudes > 0]
    if not 2 <= num_largest < magnitudes.size:
        raise ValueError(f"num_largest must lie between 2 and {magnitudes.size - 1} (the nonzero "
                         f"samples less one), got {num_largest}")
    top = -np.partition(-magnitudes, num_largest)[: num_largest + 1]
    top.sort()
    inverse = float(np.mean(np.log(top[1:] / top[0])))
    alpha = 1 / inverse
    return TailIndexEstimate(alpha, alpha / math.sqrt(num_largest), inverse,
                             inverse / math.sqrt(num_largest), 1, int(num_largest))
