"""Real data sets, offline: scikit-learn's bundled sets and MNIST-format files the test writes."""

import gzip
import sys

import jax
import numpy as np
import pytest

import jaxescape as jxe
from jaxescape._sgd.datasets import read_idx



def test_digits_split_standardised_with_training_statistics():
    import sklearn.datasets

    raw_inputs, raw_labels = sklearn.datasets.load_digits(return_X_y=True)
    data = jxe.load_sklearn_dataset("digits", jax.random.key(0), num_train=1000)
    assert data.num_classes == 10
    assert data.train.inputs.shape == (1000, 64) and data.train.targets.shape == (1000, 10)
    assert data.test.inputs.shape == (359, 64)  # 20% of 1797 held out
    train = np.asarray(data.train.inputs, np.float64)
    np.testing.assert_allclose(train.mean(0), 0, atol=1e-5)
    constant = np.asarray(data.scale) == 1  # features constant on the training set
    np.testing.assert_allclose(train.std(0)[~constant], 1, rtol=1e-4)
    assert np.all(train[:, constant] == 0) and 0 < constant.sum() < 64
    # Undoing the training standardisation gives back digits' integer pixels, test set included.
    for part in (data.train, data.test):
        pixels = (np.asarray(part.inputs, np.float64) * np.asarray(data.scale)
                  + np.asarray(data.mean))
        np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-4)
        rows = {tuple(row) for row in np.round(pixels).astype(int)}
        assert rows <= {tuple(row) for row in raw_inputs.astype(int)}
    # One-hot targets are the labels; a label copy agrees; the key fixes the split.
    labels = jxe.load_sklearn_dataset("digits", jax.random.key(0), num_train=1000,
                                      targets="label")
    np.testing.assert_array_equal(labels.train.targets, np.argmax(data.train.targets, 1))
    np.testing.assert_array_equal(labels.labels("test"), data.labels("test"))
    other = jxe.load_sklearn_dataset("digits", jax.random.key(1), num_train=1000)
    assert not np.array_equal(other.labels("train"), data.labels("train"))
    assert np.bincount(data.labels("train"), minlength=10).min() > 50  # every class present


@pytest.mark.parametrize("name, shape, classes", [
    ("breast_cancer", (455, 30), 2), ("wine", (142, 13), 3),
])
def test_other_bundled_sets(name, shape, classes):
    data = jxe.load_sklearn_dataset(name, 3)
    assert data.train.inputs.shape == shape and data.num_classes == classes
    assert data.train.num_samples + data.test.num_samples == {2: 569, 3: 178}[classes]


def test_random_labels_on_a_fraction_of_the_training_set():
    """Wu's w200: 1200 samples of which 1/6 (200) get labels drawn uniformly from the classes."""
    clean = jxe.load_sklearn_dataset("digits", jax.random.key(4), num_train=1200)
    noisy = jxe.load_sklearn_dataset("digits", jax.random.key(4), num_train=1200,
                                     random_label_fraction=1 / 6)
    flagged = np.asarray(noisy.random_labels)
    assert flagged.sum() == 200 and not np.any(np.asarray(clean.random_labels))
    np.testing.assert_array_equal(noisy.train.inputs, clean.train.inputs)
    np.testing.assert_array_equal(noisy.labels()[~flagged], clean.labels()[~flagged])
    kept = np.mean(noisy.labels()[flagged] == clean.labels()[flagged])
    # Uniform labels keep the true one with probability 1/10: binomial(200, 0.1) SE 0.021.
    assert abs(kept - 0.1) < 4 * np.sqrt(0.1 * 0.9 / 200)
    np.testing.assert_array_equal(noisy.test.targets, clean.test.targets)  # test set untouched


def test_bad_options_name_the_parameter():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="name must be one of"):
        jxe.load_sklearn_dataset("iris2", key)
    with pytest.raises(ValueError, match="num_train must be between 1 and 1438"):
        jxe.load_sklearn_dataset("digits", key, num_train=1500)
    with pytest.raises(ValueError, match="random_label_fraction"):
        jxe.load_sklearn_dataset("digits", key, random_label_fraction=1.5)
    with pytest.raises(ValueError, match="targets must be one of"):
        jxe.load_sklearn_dataset("digits", key, targets="onehot")
    with pytest.raises(ValueError, match="test_fraction"):
        jxe.load_sklearn_dataset("digits", key, test_fraction=1.0)


def test_missing_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails
    with pytest.raises(ImportError, match=r"jaxescape\[data\]"):
        jxe.load_sklearn_dataset("digits", jax.random.key(0))


def _idx_bytes(array, type_code):
    header = bytes([0, 0, type_code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.fixture
def mnist_files(tmp_path):
    """Small MNIST-format files: 12 training and 5 test images of 28 × 28, IDX (train gzipped,
    test not) and the same arrays as an .npz."""
    generator = np.random.default_rng(0)
    arrays = {"x_train": generator.integers(0, 256, (12, 28, 28), dtype=np.uint8),
              "y_train": generator.integers(0, 10, 12).astype(np.uint8),
              "x_test": generator.integers(0, 256, (5, 28, 28), dtype=np.uint8),
              "y_test": generator.integers(0, 10, 5).astype(np.uint8)}
    directory = tmp_path / "fashion"
    directory.mkdir()
    names = {"x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    for name, file in names.items():
        content = _idx_bytes(arrays[name], 0x08)
        (directory / file).write_bytes(gzip.compress(content) if file.endswith(".gz") else content)
    np.savez(tmp_path / "mnist.npz", **arrays)
    return directory, tmp_path / "mnist.npz", arrays


def test_mnist_from_idx_and_npz_files(mnist_files):
    directory, archive, arrays = mnist_files
    key = jax.random.key(2)
    data = jxe.load_mnist(directory, key, num_train=10, standardise=None)
    assert data.train.inputs.shape == (10, 784) and data.test.inputs.shape == (5, 784)
    assert data.num_classes == 10
    flat = arrays["x_train"].reshape(12, -1) / 255
    for row, label in zip(np.asarray(data.train.inputs, np.float64), data.labels()):
        match = np.flatnonzero(np.all(np.abs(flat - row) < 1e-6, axis=1))
        assert len(match) == 1 and int(arrays["y_train"][match[0]]) == int(label)
    from_npz = jxe.load_mnist(archive, key, num_train=10, standardise=None)
    np.testing.assert_array_equal(from_npz.train.inputs, data.train.inputs)
    np.testing.assert_array_equal(from_npz.test.targets, data.test.targets)
    standardised = jxe.load_mnist(archive, key)
    assert abs(float(standardised.train.inputs.mean())) < 1e-5
    assert abs(float(standardised.train.inputs.std()) - 1) < 1e-4


def test_idx_reader_types_and_errors(tmp_path):
    values = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    (tmp_path / "floats").write_bytes(_idx_bytes(values, 0x0D))
    np.testing.assert_array_equal(read_idx(tmp_path / "floats"), values)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(_idx_bytes(values, 0x0D)[:-4])
    with pytest.raises(ValueError, match="does not match"):
        read_idx(tmp_path / "short")
    with pytest.raises(FileNotFoundError, match="train-images"):
        jxe.load_mnist(tmp_path, jax.random.key(0))
