r"""Real classification data sets, offline: scikit-learn's bundled sets and local MNIST files.

Nothing is downloaded. `load_sklearn_dataset` reads the small sets that scikit-learn ships
(digits: 1797 × 64, 10 classes; breast cancer: 569 × 30, 2 classes; wine: 178 × 13, 3 classes;
scikit-learn is the optional extra `jaxescape[data]`). `load_mnist` reads MNIST or
Fashion-MNIST from files the user already has, in their standard formats: the four IDX files
(`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
`t10k-labels-idx1-ubyte`, each gzipped or not) or one `.npz` with `x_train`, `y_train`,
`x_test`, `y_test`.

Both return a `SplitDataset`: a training and a test `Dataset`, inputs standardised with the
training set's statistics. Targets are one-hot rows of length C by default (Wu, Ma & E and Mori
et al. train with MSE on one-hot targets), or the class index as a float (`targets="label"`);
`NetworkModel`'s losses and accuracy take either. Wu, Ma & E's "w200" set (1000 samples plus
200 with random labels) is `num_train=1200, random_label_fraction=1/6`.
"""

import gzip
import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from .data import Dataset


SKLEARN_DATASETS = ("digits", "breast_cancer", "wine")
TARGET_KINDS = ("one_hot", "label")
STANDARDISATIONS = ("feature", "global", None)


class SplitDataset(eqx.Module):
    """A training and a test set of a classification problem.

    **Fields:**

    - `train`, `test`: `Dataset`s; inputs (n, features), targets (n, C) one-hot or (n,) labels.
    - `num_classes`: C.
    - `random_labels`: bool (n_train,), the training samples whose label was redrawn.
    - `mean`, `scale`: the standardisation, x ↦ (x − mean)/scale, from the training inputs.
    """

    train: Dataset
    test: Dataset
    num_classes: int = eqx.field(static=True)
    random_labels: jax.Array
    mean: jax.Array
    scale: jax.Array

    def labels(self, part: str = "train") -> jax.Array:
        """The integer class labels of `part` ("train" or "test"), shape (n,)."""
        targets = {"train": self.train, "test": self.test}[part].targets
        return (jnp.argmax(targets, -1) if targets.ndim == 2 else targets).astype(jnp.int32)


def _check_count(name, value, available):
    if value is None:
        return available
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer or None, got {value!r}")
    if not 1 <= value <= available:
        raise ValueError(f"{name} must be between 1 and {available} (available), got {value}")
    return int(value)


def _check_options(random_label_fraction, targets, standardise, test_fraction=None):
    if not 0 <= random_label_fraction <= 1:
        raise ValueError(
            f"random_label_fraction must be between 0 and 1, got {random_label_fraction}"
        )
    if targets not in TARGET_KINDS:
        raise ValueError(f"targets must be one of {TARGET_KINDS}, got {targets!r}")
    if standardise not in STANDARDISATIONS:
        raise ValueError(f"standardise must be one of {STANDARDISATIONS}, got {standardise!r}")
    if test_fraction is not None and not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")


def _build(train_x, train_y, test_x, test_y, num_classes, key, random_label_fraction, targets,
           standardise, dtype) -> SplitDataset:
    """Standardise with the training statistics, redraw labels, convert targets (host side)."""
    train_x = np.asarray(train_x, np.float64).reshape(len(train_x), -1)
    test_x = np.asarray(test_x, np.float64).reshape(len(test_x), -1)
    train_y, test_y = np.asarray(train_y, np.int64), np.asarray(test_y, np.int64)
    for name, labels in (("training", train_y), ("test", test_y)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"the {name} labels must be between 0 and {num_classes - 1}, got "
                f"{labels.min()}..{labels.max()}"
            )
    if standardise == "feature":
        mean, scale = train_x.mean(0), train_x.std(0)
        scale = np.where(scale > 0, scale, 1.0)  # constant features (digits' corners) stay 0
    elif standardise == "global":
        mean, scale = np.full(train_x.shape[1], train_x.mean()), np.full(train_x.shape[1],
                                                                         train_x.std() or 1.0)
    else:
        mean, scale = np.zeros(train_x.shape[1]), np.ones(train_x.shape[1])
    num_random = int(round(random_label_fraction * len(train_y)))
    choose_key, label_key = jr.split(key)
    chosen = np.asarray(jr.permutation(choose_key, len(train_y)))[:num_random]
    random_labels = np.zeros(len(train_y), bool)
    random_labels[chosen] = True
    train_y = train_y.copy()
    train_y[chosen] = np.asarray(jr.randint(label_key, (num_random,), 0, num_classes))
    dtype = jnp.result_type(float) if dtype is None else dtype

    def part(inputs, labels):
        encoded = np.eye(num_classes)[labels] if targets == "one_hot" else labels
        return Dataset(jnp.asarray((inputs - mean) / scale, dtype), jnp.asarray(encoded, dtype))

    return SplitDataset(part(train_x, train_y), part(test_x, test_y), num_classes,
                        jnp.asarray(random_labels), jnp.asarray(mean, dtype),
                        jnp.asarray(scale, dtype))


def load_sklearn_dataset(
    name: str,
    key: jax.Array,
    *,
    num_train: int | None = None,
    test_fraction: float = 0.2,
    random_label_fraction: float = 0.0,
    targets: str = "one_hot",
    standardise: str | None = "feature",
    dtype=None,
) -> SplitDataset:
    r"""One of scikit-learn's bundled classification sets, shuffled, split and standardised.

    **Arguments:**

    - `name`: "digits" (1797 × 64, 10 classes), "breast_cancer" (569 × 30, 2) or "wine"
      (178 × 13, 3).
    - `key`: a JAX key (or an int seed): it draws the split, the subset and the random labels.
    - `num_train`: n, the training samples kept (default: all not held out); the test set is
      ⌊test_fraction · N⌉ samples of the rest, whatever n is.
    - `test_fraction`: the share of the N samples held out for testing, in (0, 1).
    - `random_label_fraction`: the share of the n training samples (chosen by `key`) whose
      label is redrawn uniformly from the C classes (so about 1/C keep theirs): Wu, Ma & E's
      "w200" is n = 1200 with 1/6.
    - `targets`: "one_hot" (float rows of length C) or "label" (the class index as a float).
    - `standardise`: "feature" (each feature to mean 0 and variance 1 on the training set;
      constant features are left at 0), "global" (one mean and scale) or None.
    - `dtype`: of inputs and targets (default: the default float, float32 unless x64).

    **Returns:** a `SplitDataset`.
    """
    if name not in SKLEARN_DATASETS:
        raise ValueError(f"name must be one of {SKLEARN_DATASETS}, got {name!r}")
    _check_options(random_label_fraction, targets, standardise, test_fraction)
    try:
        import sklearn.datasets
    except ImportError as error:
        raise ImportError(
            "load_sklearn_dataset needs scikit-learn, an optional extra: "
            'pip install "jaxescape[data]"'
        ) from error
    inputs, labels = getattr(sklearn.datasets, f"load_{name}")(return_X_y=True)
    key = jr.key(key) if isinstance(key, int | np.integer) else key
    split_key, label_key = jr.split(key)
    total = len(labels)
    num_test = max(1, int(round(test_fraction * total)))
    num_train = _check_count("num_train", num_train, total - num_test)
    order = np.asarray(jr.permutation(split_key, total))
    test, train = order[:num_test], order[num_test:][:num_train]
    num_classes = int(labels.max()) + 1
    return _build(inputs[train], labels[train], inputs[test], labels[test], num_classes,
                  label_key, random_label_fraction, targets, standardise, dtype)


IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte",
}


def read_idx(path) -> np.ndarray:
    """An IDX file (the MNIST format: magic 0 0 type ndim, big-endian uint32 sizes, then the
    big-endian data), gzipped or not (told by its first bytes, not its name)."""
    raw = pathlib.Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int(size) for size in np.frombuffer(raw, ">u4", ndim, 4))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    offset = 4 + 4 * ndim
    if len(raw) - offset != dtype.itemsize * int(np.prod(shape)):
        raise ValueError(f"{path}: the header's shape {shape} does not match the data's size")
    return np.frombuffer(raw, dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def _mnist_arrays(path: pathlib.Path) -> dict:
    if path.is_file() and path.suffix == ".npz":
        with np.load(path) as archive:
            missing = set(MNIST_FILES) - set(archive.files)
            if missing:
                raise ValueError(f"{path} lacks the arrays {sorted(missing)} of the MNIST .npz")
            return {name: archive[name] for name in MNIST_FILES}
    if not path.is_dir():
        raise ValueError(
            f"path must be a directory with the four MNIST IDX files or an .npz file, got {path}"
        )
    arrays = {}
    for name, stem in MNIST_FILES.items():
        found = [path / (stem + suffix) for suffix in (".gz", "")
                 if (path / (stem + suffix)).is_file()]
        if not found:
            raise FileNotFoundError(f"{path} has no {stem} (nor {stem}.gz)")
        arrays[name] = read_idx(found[0])
    return arrays


def load_mnist(
    path,
    key: jax.Array,
    *,
    num_train: int | None = None,
    num_test: int | None = None,
    random_label_fraction: float = 0.0,
    targets: str = "one_hot",
    standardise: str | None = "global",
    dtype=None,
) -> SplitDataset:
    r"""MNIST or Fashion-MNIST (same formats) from local files; nothing is downloaded.

    **Arguments:**

    - `path`: a directory with the four IDX files (gzipped or not) or an `.npz` file with
      `x_train`, `y_train`, `x_test`, `y_test`.
    - `key`: draws the subsets (without replacement) and the random labels.
    - `num_train`, `num_test`: the samples kept from each part (default: all).
    - `standardise`: "global" (default: pixels to mean 0, variance 1 over the training images),
      "feature" (per pixel; near-constant border pixels then blow up) or None (pixels / 255).
    - `random_label_fraction`, `targets`, `dtype`: as in `load_sklearn_dataset`.

    **Returns:** a `SplitDataset` with inputs flattened to 784 features and 10 classes.
    """
    _check_options(random_label_fraction, targets, standardise)
    arrays = _mnist_arrays(pathlib.Path(path))
    for part in ("train", "test"):
        if len(arrays[f"x_{part}"]) != len(arrays[f"y_{part}"]):
            raise ValueError(
                f"x_{part} has {len(arrays[f'x_{part}'])} images but y_{part} has "
                f"{len(arrays[f'y_{part}'])} labels"
            )
    key = jr.key(key) if isinstance(key, int | np.integer) else key
    train_key, test_key, label_key = jr.split(key, 3)
    num_train = _check_count("num_train", num_train, len(arrays["y_train"]))
    num_test = _check_count("num_test", num_test, len(arrays["y_test"]))
    train = np.asarray(jr.permutation(train_key, len(arrays["y_train"])))[:num_train]
    test = np.asarray(jr.permutation(test_key, len(arrays["y_test"])))[:num_test]
    return _build(arrays["x_train"][train] / 255, arrays["y_train"][train],
                  arrays["x_test"][test] / 255, arrays["y_test"][test], 10, label_key,
                  random_label_fraction, targets, standardise, dtype)
