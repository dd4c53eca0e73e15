"""Declarative feature spec.

One `DatasetSpec` names every feature once. From it come the statistics fitted on the
training split (`DatasetSpec.fit`), the preprocessing that turns raw columns into model
inputs (`tfzoo.data.FeaturePreprocessor`), the batched `tf.data` pipeline
(`tfzoo.data.make_dataset`) and the serving signature (`DatasetSpec.serving_signature`).

Raw, in-memory columns are NumPy arrays, one row per example:

| kind        | raw column                          | model input after preprocessing        |
| ----------- | ----------------------------------- | -------------------------------------- |
| categorical | [n] str (or int64)                  | [n] int64 index; OOV buckets first     |
| id          | [n] int64                           | [n] int64 in [0, num_ids]; num_ids=OOV |
| numeric     | [n] float32, NaN = missing          | [n] float32 standardised, missing -> 0 |
| sequence    | [n, w] padded ("" / -1 / NaN)       | [n, max_length], 0 = padding           |
| embedding   | [n, dim] float32, NaN = missing     | [n, dim] float32, missing -> 0         |

Each kind owns what differs between kinds, so that the preprocessing, the encoders and
the exporters never switch on the class of a feature:

- `modality` ("categorical", "id", "numeric" or "embedding"; a sequence's is its
  element's) and `is_sequence`: what the values are, for models that treat kinds
  differently by design (wide vs deep parts);
- `lookup_layer()` and `preprocess(values, lookup)`: raw tensor -> model input;
- `embedding_rows`, `embedding_width(default)`, `encoded_width(default)` and
  `encode(inputs, table, dtype=...)`: model input -> dense vector in `dtype` (`tfzoo.layers.FeatureEncoder`);
- `example_values(num_rows)`: valid raw values (warm-up requests, tests);
- `baseline_columns(inputs)`: model inputs (NumPy) -> the columns the strong simple
  baselines read (`tfzoo.evaluation.tabular`): a sparse block for linear models, a dense
  block for trees and which of its columns are categorical.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sparse
import tensorflow as tf

STRING = "string"
INT64 = "int64"
FLOAT32 = "float32"

# Padding value of each raw dtype inside a sequence column.
SEQUENCE_PAD = {STRING: "", INT64: -1, FLOAT32: float("nan")}


def _check_name(name: str) -> None:
    # Serving signature arguments must match TF's argument-name pattern.
    if not name or not all(c.isalnum() or c in "_.-" for c in name) or name[0] in ".-_":
        raise ValueError(
            "A feature name must start with a letter or digit and hold only letters, "
            f"digits, '_', '.' or '-'. Received: name={name!r}"
        )


# Trees split a categorical column natively up to this many categories (scikit-learn's
# histogram trees bin at most 255 values); above it, indices are ordered numbers.
MAX_TREE_CATEGORIES = 255


@dataclasses.dataclass(frozen=True)
class BaselineColumns:
    """One feature's columns for the strong simple baselines (`tfzoo.evaluation.tabular`).

    Attributes:
      linear: [rows, width] SciPy CSR matrix for linear models (one-hot indices, bags of
        indices, standardised numbers, vectors).
      trees: [rows, tree_width] float64 for gradient-boosted trees.
      categorical: [tree_width] bool: which tree columns hold category indices.
    """

    linear: sparse.csr_matrix
    trees: np.ndarray
    categorical: np.ndarray


def _one_hot(indices: np.ndarray, width: int) -> sparse.csr_matrix:
    rows = np.arange(len(indices))
    return sparse.csr_matrix(
        (np.ones(len(indices)), (rows, np.asarray(indices, np.int64))), shape=(len(indices), width)
    )


def _dense_columns(values: np.ndarray) -> BaselineColumns:
    values = np.asarray(values, np.float64).reshape(len(values), -1)  # [rows, width]
    return BaselineColumns(sparse.csr_matrix(values), values, np.zeros(values.shape[1], bool))


class _FitsInOnePass:
    """`fitted(values)`: the feature fitted on one column (`statistics()` over one batch)."""

    def fitted(self, values: np.ndarray):
        statistics = self.statistics()
        statistics.update(np.asarray(values))
        return statistics.fitted()


class _EmbeddedIndices(_FitsInOnePass):
    """Encoding of a feature whose model inputs are indices (`tfzoo.layers.FeatureEncoder`):
    an embedding table of `cardinality` rows, `embedding_dim` wide (else the encoder's
    default). Shared by categorical, id and index-sequence features."""

    @property
    def embedding_rows(self) -> int:
        return self.cardinality

    @property
    def embedding_table_name(self) -> str:
        return f"embedding_{self.name}"

    def embedding_width(self, default: int) -> int:
        return self.embedding_dim or default

    def encoded_width(self, default: int) -> int:
        return self.embedding_width(default)

    def encode(self, inputs: tf.Tensor, table: tf.keras.layers.Layer | None, *, dtype=tf.float32) -> tf.Tensor:
        return table(inputs)  # [batch, width]

    # Baselines: a one-hot index for linear models; for trees the index itself, a category
    # where there are few enough of them.
    def baseline_columns(self, inputs: np.ndarray) -> BaselineColumns:
        indices = np.asarray(inputs, np.int64)  # [rows]
        categorical = self.embedding_rows <= MAX_TREE_CATEGORIES
        return BaselineColumns(
            _one_hot(indices, self.embedding_rows), indices[:, np.newaxis].astype(np.float64), np.array([categorical])
        )


@dataclasses.dataclass(frozen=True)
class CategoricalFeature(_EmbeddedIndices):
    """A categorical value, looked up in a vocabulary or hashed into buckets.

    With a vocabulary, values outside it go to `num_oov_buckets` out-of-vocabulary
    indices `[0, num_oov_buckets)` and known values follow in vocabulary order. With
    `hash_buckets`, every value hashes into `[0, hash_buckets)`. With neither, the
    vocabulary is learned from the training split by `DatasetSpec.fit`.
    """

    name: str
    vocabulary: tuple | None = None
    hash_buckets: int | None = None
    num_oov_buckets: int = 1
    dtype: str = STRING
    embedding_dim: int | None = None
    max_tokens: int | None = None
    min_count: int = 1
    kind: ClassVar[str] = "categorical"
    modality: ClassVar[str] = "categorical"
    is_sequence: ClassVar[bool] = False

    def __post_init__(self):
        _check_name(self.name)
        if self.dtype not in (STRING, INT64):
            raise ValueError(
                f"`dtype` of categorical feature {self.name!r} must be 'string' or "
                f"'int64'. Received: dtype={self.dtype!r}"
            )
        if self.vocabulary is not None and self.hash_buckets is not None:
            raise ValueError(
                f"Categorical feature {self.name!r} takes a vocabulary or hash buckets, "
                f"not both. Received: hash_buckets={self.hash_buckets}"
            )
        if self.hash_buckets is not None and self.hash_buckets < 1:
            raise ValueError(
                f"`hash_buckets` of {self.name!r} must be >= 1. Received: hash_buckets={self.hash_buckets}"
            )
        if self.num_oov_buckets < 1:
            raise ValueError(
                f"`num_oov_buckets` of {self.name!r} must be >= 1 so that unknown values "
                f"have somewhere to go. Received: num_oov_buckets={self.num_oov_buckets}"
            )
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"`max_tokens` of {self.name!r} must be >= 1. Received: max_tokens={self.max_tokens}")
        if self.min_count < 1:
            raise ValueError(f"`min_count` of {self.name!r} must be >= 1. Received: min_count={self.min_count}")
        if self.vocabulary is not None:
            cast = str if self.dtype == STRING else int
            vocabulary = tuple(cast(v) for v in self.vocabulary)
            if len(set(vocabulary)) != len(vocabulary):
                raise ValueError(f"The vocabulary of {self.name!r} has duplicate entries.")
            object.__setattr__(self, "vocabulary", vocabulary)

    @property
    def is_fitted(self) -> bool:
        return self.vocabulary is not None or self.hash_buckets is not None

    @property
    def cardinality(self) -> int:
        """Number of distinct indices the lookup produces."""
        if self.hash_buckets is not None:
            return self.hash_buckets
        if self.vocabulary is None:
            raise ValueError(f"Categorical feature {self.name!r} has no vocabulary yet; fit the spec first.")
        return len(self.vocabulary) + self.num_oov_buckets

    def statistics(self, *, seed: int = 0) -> FeatureStatistics:
        return _UnfittedOnly(self) if self.is_fitted else _ValueCounts(self)

    def fitted_from_counts(self, counts: Mapping[Any, int]) -> CategoricalFeature:
        """The feature with the vocabulary of `counts` ({value: count}): values seen at
        least `min_count` times, the `max_tokens` most frequent (the rest go to the OOV
        buckets); most frequent first, ties broken by value, so it is deterministic."""
        vocabulary = sorted((v for v, c in counts.items() if c >= self.min_count), key=lambda v: (-counts[v], str(v)))
        return dataclasses.replace(self, vocabulary=tuple(vocabulary[: self.max_tokens]))

    def lookup_layer(self) -> tf.keras.layers.Layer:
        """The Keras lookup (vocabulary or hashing) that maps raw values to indices; a
        table, not a weight: created once from the fitted feature."""
        name = f"lookup_{self.name}"
        if self.hash_buckets is not None:
            return tf.keras.layers.Hashing(num_bins=self.hash_buckets, name=name)
        if self.dtype == STRING:
            return tf.keras.layers.StringLookup(
                vocabulary=list(self.vocabulary), num_oov_indices=self.num_oov_buckets, mask_token=None, name=name
            )
        return tf.keras.layers.IntegerLookup(
            vocabulary=list(self.vocabulary),
            num_oov_indices=self.num_oov_buckets,
            mask_token=None,
            vocabulary_dtype="int64",
            name=name,
        )

    def preprocess(self, values: tf.Tensor, lookup: tf.keras.layers.Layer | None) -> tf.Tensor:
        return lookup(values)  # [batch] int64

    def example_values(self, num_rows: int) -> np.ndarray:
        """Row i takes the i-th vocabulary value (cycling); hashed: any value is valid."""
        if self.vocabulary:
            return np.array(
                [self.vocabulary[i % len(self.vocabulary)] for i in range(num_rows)],
                dtype=object if self.dtype == STRING else np.int64,
            )
        if self.dtype == STRING:  # the out-of-vocabulary path is what serving sees most
            return np.array([f"value_{i}" for i in range(num_rows)], dtype=object)
        return np.arange(num_rows, dtype=np.int64)


@dataclasses.dataclass(frozen=True)
class IdFeature(_EmbeddedIndices):
    """An integer id in `[0, num_ids)`; any other value maps to the OOV index `num_ids`."""

    name: str
    num_ids: int
    embedding_dim: int | None = None
    kind: ClassVar[str] = "id"
    modality: ClassVar[str] = "id"
    is_sequence: ClassVar[bool] = False
    dtype: ClassVar[str] = INT64

    def __post_init__(self):
        _check_name(self.name)
        if self.num_ids < 1:
            raise ValueError(f"`num_ids` of {self.name!r} must be >= 1. Received: num_ids={self.num_ids}")

    is_fitted: ClassVar[bool] = True

    @property
    def cardinality(self) -> int:
        return self.num_ids + 1

    def statistics(self, *, seed: int = 0) -> FeatureStatistics:
        return _UnfittedOnly(self)

    def lookup_layer(self) -> None:
        return None

    def preprocess(self, values: tf.Tensor, lookup: None = None) -> tf.Tensor:
        in_range = (values >= 0) & (values < self.num_ids)
        return tf.where(in_range, values, tf.constant(self.num_ids, tf.int64))  # [batch] int64

    def example_values(self, num_rows: int) -> np.ndarray:
        return np.arange(num_rows, dtype=np.int64) % self.num_ids

    def baseline_columns(self, inputs: np.ndarray) -> BaselineColumns:
        # An id's number orders nothing: trees get no column, linear models its one-hot row.
        indices = np.asarray(inputs, np.int64)  # [rows]
        return BaselineColumns(_one_hot(indices, self.cardinality), np.zeros((len(indices), 0)), np.zeros(0, bool))


@dataclasses.dataclass(frozen=True)
class NumericFeature(_FitsInOnePass):
    """A real value, standardised with statistics of the training split.

    With `log1p`, values go through sign(x) * log(1 + |x|) first (heavy-tailed amounts).
    Missing values (NaN, inf) become the training mean, i.e. 0 after standardisation.
    With `num_buckets`, fitting also learns up to that many quantile buckets (boundaries
    in standardised units); models then embed the bucket next to the value, which lets a
    network use thresholds the way trees do (spiky amounts, ages).
    """

    name: str
    mean: float | None = None
    std: float | None = None
    log1p: bool = False
    num_buckets: int | None = None
    boundaries: tuple | None = None
    kind: ClassVar[str] = "numeric"
    modality: ClassVar[str] = "numeric"
    is_sequence: ClassVar[bool] = False
    dtype: ClassVar[str] = FLOAT32

    def __post_init__(self):
        _check_name(self.name)
        if (self.mean is None) != (self.std is None):
            raise ValueError(f"Numeric feature {self.name!r} needs both `mean` and `std`, or neither.")
        if self.std is not None and not self.std > 0:
            raise ValueError(f"`std` of {self.name!r} must be > 0. Received: std={self.std}")
        if self.num_buckets is not None and self.num_buckets < 2:
            raise ValueError(f"`num_buckets` of {self.name!r} must be >= 2. Received: num_buckets={self.num_buckets}")
        if self.boundaries is not None:
            boundaries = tuple(float(b) for b in self.boundaries)
            if list(boundaries) != sorted(set(boundaries)):
                raise ValueError(
                    f"`boundaries` of {self.name!r} must be strictly increasing. Received: boundaries={boundaries}"
                )
            object.__setattr__(self, "boundaries", boundaries)

    @property
    def is_fitted(self) -> bool:
        return self.mean is not None and (self.num_buckets is None or self.boundaries is not None)

    @property
    def num_bucket_indices(self) -> int:
        """Bucket indices a model embeds (0 when the feature is not bucketised)."""
        return 0 if self.boundaries is None else len(self.boundaries) + 1

    def transform_np(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        return np.sign(values) * np.log1p(np.abs(values)) if self.log1p else values

    def statistics(self, *, seed: int = 0) -> FeatureStatistics:
        return _UnfittedOnly(self) if self.is_fitted else _Moments(self, seed=seed)

    def fitted_from_moments(self, count: int, mean: float, std: float, sample: np.ndarray) -> NumericFeature:
        """The feature standardised by `mean` and `std` of its `count` finite (transformed)
        training values, with quantile buckets from `sample` (a uniform sample of them, or
        all of them)."""
        if count == 0:
            mean, std = 0.0, 1.0
        std = std if std > 1e-12 else 1.0  # a constant column still standardises to 0
        boundaries = None
        if self.num_buckets is not None:
            standardised = (sample - mean) / std if sample.size else np.zeros(1)
            quantiles = np.quantile(standardised, np.linspace(0, 1, self.num_buckets + 1)[1:-1])
            # Each boundary halfway between the sample's values on either side of its quantile:
            # a quantile of an integer-valued column (age) is a data value, and a value on a
            # boundary fell in one bucket in training and the next in the served graph (whose
            # float32 arithmetic may round the standardised value the other way).
            values = np.unique(standardised)
            above = np.minimum(np.searchsorted(values, quantiles, side="right"), len(values) - 1)
            on_value = (values[above - 1] == quantiles) & (above > 0) & (values[above] > quantiles)
            between = np.where(on_value, (values[above - 1] + values[above]) / 2, quantiles)
            boundaries = tuple(float(b) for b in np.unique(np.round(between, 6)))
        return dataclasses.replace(self, mean=float(mean), std=float(std), boundaries=boundaries)

    def lookup_layer(self) -> None:
        return None

    def preprocess(self, values: tf.Tensor, lookup: None = None) -> tf.Tensor:
        if self.log1p:
            values = tf.sign(values) * tf.math.log1p(tf.abs(values))
        standardised = (values - self.mean) / self.std
        return tf.where(tf.math.is_finite(standardised), standardised, tf.zeros_like(standardised))  # [batch]

    def example_values(self, num_rows: int) -> np.ndarray:
        """The mean and mean +- one standard deviation in raw space; the last of 3+ values
        is missing (NaN), so warm-up also runs the missing-value path."""
        mean = self.mean if self.mean is not None else 0.0
        std = self.std if self.std is not None else 1.0
        transformed = np.array([mean + (0 if i == 0 else (-1) ** i * std) for i in range(num_rows)])
        # Invert the optional log1p so that the raw value maps to the intended statistic.
        values = np.sign(transformed) * np.expm1(np.abs(transformed)) if self.log1p else transformed
        if num_rows >= 3:
            values[-1] = np.nan
        return values.astype(np.float32)

    # Encoding: the value itself, and with buckets an embedding of its bucket.
    @property
    def embedding_rows(self) -> int:
        return self.num_bucket_indices

    @property
    def embedding_table_name(self) -> str:
        return f"bucket_embedding_{self.name}"

    def embedding_width(self, default: int) -> int:
        return default

    def encoded_width(self, default: int) -> int:
        return 1 + (default if self.num_bucket_indices else 0)

    def encode(self, inputs: tf.Tensor, table: tf.keras.layers.Layer | None, *, dtype=tf.float32) -> tf.Tensor:
        values = tf.cast(inputs, tf.float32)  # [batch]
        if not self.num_bucket_indices:
            return tf.cast(values, dtype)[:, tf.newaxis]  # [batch, 1]
        # Bucketised in float32: a 16-bit value could cross a boundary.
        bucket = tf.raw_ops.Bucketize(input=values, boundaries=list(self.boundaries))  # [batch]
        return tf.concat([tf.cast(values, dtype)[:, tf.newaxis], table(bucket)], axis=-1)  # [batch, 1 + width]

    def baseline_columns(self, inputs: np.ndarray) -> BaselineColumns:
        # The standardised value (trees find their own thresholds); with buckets, linear
        # models also get the bucket's one-hot, as the networks get its embedding.
        values = np.asarray(inputs, np.float64)  # [rows]
        columns = _dense_columns(values)
        if not self.num_bucket_indices:
            return columns
        bucket = np.searchsorted(np.asarray(self.boundaries), values, side="right")  # as Bucketize
        linear = sparse.hstack([columns.linear, _one_hot(bucket, self.num_bucket_indices)], format="csr")
        return dataclasses.replace(columns, linear=linear)


ElementFeature = CategoricalFeature | IdFeature | NumericFeature


@dataclasses.dataclass(frozen=True)
class SequenceFeature(_EmbeddedIndices):
    """A variable-length sequence of categorical, id or numeric elements.

    Raw columns are [n, w] arrays, right-padded with "" (strings), -1 (ints) or NaN
    (floats). A row's length runs to its last valid element; a gap before it is a missing
    value (OOV index, or 0 for numbers), so channels of one behaviour sequence stay
    aligned. Preprocessing keeps the last `max_length` positions (the most recent ones of
    a time-ordered history), left-aligned and padded to `max_length`. Categorical and id
    elements are shifted by one so that index 0 is padding.
    """

    name: str
    element: ElementFeature
    max_length: int
    kind: ClassVar[str] = "sequence"
    is_sequence: ClassVar[bool] = True

    def __post_init__(self):
        _check_name(self.name)
        if isinstance(self.element, SequenceFeature) or not isinstance(
            self.element, (CategoricalFeature, IdFeature, NumericFeature)
        ):
            raise ValueError(
                f"The element of sequence {self.name!r} must be categorical, id or numeric. "
                f"Received: element={self.element!r}"
            )
        if self.max_length < 1:
            raise ValueError(f"`max_length` of {self.name!r} must be >= 1. Received: max_length={self.max_length}")

    @property
    def dtype(self) -> str:
        return self.element.dtype

    @property
    def is_fitted(self) -> bool:
        return self.element.is_fitted

    @property
    def cardinality(self) -> int:
        """Indices after preprocessing, padding (0) included."""
        if isinstance(self.element, NumericFeature):
            raise ValueError(f"Sequence {self.name!r} holds numeric elements and has no cardinality.")
        return self.element.cardinality + 1

    @property
    def embedding_dim(self) -> int | None:
        return getattr(self.element, "embedding_dim", None)

    def valid_mask_np(self, values: np.ndarray) -> np.ndarray:
        if self.dtype == FLOAT32:
            return np.isfinite(values.astype(np.float64))
        if self.dtype == INT64:
            return values >= 0
        return values != ""

    def statistics(self, *, seed: int = 0) -> FeatureStatistics:
        return _UnfittedOnly(self) if self.is_fitted else _SequenceElements(self, seed=seed)

    @property
    def modality(self) -> str:
        return self.element.modality

    def lookup_layer(self) -> tf.keras.layers.Layer | None:
        return self.element.lookup_layer()

    def preprocess(self, values: tf.Tensor, lookup: tf.keras.layers.Layer | None) -> tf.Tensor:
        if self.dtype == FLOAT32:
            valid = tf.math.is_finite(values)
        elif self.dtype == INT64:
            valid = values >= 0
        else:
            valid = tf.not_equal(values, "")
        # A row's length runs to its last valid element; gaps before it stay in place as
        # missing values, so channels of one behaviour sequence remain aligned.
        positions = tf.range(1, tf.shape(values, out_type=tf.int64)[1] + 1)  # [width]
        lengths = tf.reduce_max(tf.where(valid, positions[tf.newaxis, :], 0), axis=1)  # [batch]
        # Keep the most recent `max_length` positions of each row, left-aligned.
        kept = tf.RaggedTensor.from_tensor(values, lengths=lengths)[:, -self.max_length :]
        element = self.element.preprocess(kept.flat_values, lookup)
        if self.modality != "numeric":
            element = element + 1  # index 0 is padding
        return kept.with_flat_values(element).to_tensor(
            default_value=tf.zeros([], element.dtype), shape=[None, self.max_length]
        )  # [batch, max_length]

    def example_values(self, num_rows: int) -> np.ndarray:
        """The element's values over a few positions, row 0 full and the next ones shorter
        (padded), so that warm-up exercises the padding."""
        width = min(self.max_length, 3)
        values = self.element.example_values(width)
        column = np.empty((num_rows, width), dtype=values.dtype)
        for i in range(num_rows):
            length = width - (i % width)
            column[i, :length] = values[:length]
            column[i, length:] = SEQUENCE_PAD[self.dtype]
        return column

    # Encoding: numbers averaged over the sequence; indices embedded and mean-pooled over
    # the non-padding positions.
    @property
    def embedding_rows(self) -> int:
        return 0 if self.modality == "numeric" else self.cardinality

    def encoded_width(self, default: int) -> int:
        return 1 if self.modality == "numeric" else self.embedding_width(default)

    def encode(self, inputs: tf.Tensor, table: tf.keras.layers.Layer | None, *, dtype=tf.float32) -> tf.Tensor:
        if self.modality == "numeric":
            return tf.cast(tf.reduce_mean(tf.cast(inputs, tf.float32), axis=1, keepdims=True), dtype)  # [batch, 1]
        embedded = table(inputs)  # [batch, length, width]
        mask = tf.cast(inputs > 0, embedded.dtype)[:, :, tf.newaxis]  # [batch, length, 1]
        total = tf.reduce_sum(embedded * mask, axis=1)  # [batch, width]
        return total / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)

    def baseline_columns(self, inputs: np.ndarray) -> BaselineColumns:
        # As the encoder pools: numbers averaged; indices as a bag (each index's share of
        # the row's non-padding positions) for linear models, the row's length for trees.
        if self.modality == "numeric":
            return _dense_columns(np.asarray(inputs, np.float64).mean(axis=1))
        indices = np.asarray(inputs, np.int64)  # [rows, max_length], 0 = padding
        rows, positions = np.nonzero(indices)
        lengths = np.bincount(rows, minlength=len(indices)).astype(np.float64)  # [rows]
        bag = sparse.csr_matrix(
            (1.0 / lengths[rows], (rows, indices[rows, positions])), shape=(len(indices), self.cardinality)
        )  # duplicates summed
        return BaselineColumns(bag, lengths[:, np.newaxis], np.zeros(1, bool))


@dataclasses.dataclass(frozen=True)
class EmbeddingFeature(_FitsInOnePass):
    """A precomputed vector (text or image embedding); missing entries become 0."""

    name: str
    dim: int
    kind: ClassVar[str] = "embedding"
    modality: ClassVar[str] = "embedding"
    is_sequence: ClassVar[bool] = False
    dtype: ClassVar[str] = FLOAT32
    is_fitted: ClassVar[bool] = True

    def __post_init__(self):
        _check_name(self.name)
        if self.dim < 1:
            raise ValueError(f"`dim` of {self.name!r} must be >= 1. Received: dim={self.dim}")

    def statistics(self, *, seed: int = 0) -> FeatureStatistics:
        return _UnfittedOnly(self)

    def lookup_layer(self) -> None:
        return None

    def preprocess(self, values: tf.Tensor, lookup: None = None) -> tf.Tensor:
        return tf.where(tf.math.is_finite(values), values, tf.zeros_like(values))  # [batch, dim]

    def example_values(self, num_rows: int) -> np.ndarray:
        """Small values across the dimensions; the last of 3+ rows is missing."""
        column = np.tile(np.linspace(-1.0, 1.0, self.dim, dtype=np.float32), (num_rows, 1))
        if num_rows >= 3:
            column[-1] = np.nan
        return column

    # Encoding: the vector as it is.
    embedding_rows: ClassVar[int] = 0
    embedding_table_name: ClassVar[str] = ""

    def embedding_width(self, default: int) -> int:
        return 0

    def encoded_width(self, default: int) -> int:
        return self.dim

    def encode(self, inputs: tf.Tensor, table: tf.keras.layers.Layer | None, *, dtype=tf.float32) -> tf.Tensor:
        return tf.cast(inputs, dtype)  # [batch, dim]

    def baseline_columns(self, inputs: np.ndarray) -> BaselineColumns:
        return _dense_columns(inputs)  # the vector, for both


# Statistics a spec is fitted with, gathered in one pass over batches of rows: each kind's
# `statistics()` gives an accumulator that takes batches (`update`), combines with another
# over other rows (`merge`: the same statistics whether rows arrive in one batch, many, or on
# several workers) and gives the fitted feature (`fitted`). `DatasetSpec.fit` is one batch.

# Numbers a numeric feature keeps for its quantile buckets: a uniform sample (bottom-k by
# seeded random keys, which merges exactly); every value while there are fewer, so the
# boundaries of data up to this size are exact.
QUANTILE_SAMPLE_SIZE = 200_000


class FeatureStatistics:
    """Accumulates one feature's statistics over batches of its raw column."""

    def __init__(self, feature):
        self.feature = feature

    def update(self, values: np.ndarray) -> None:
        """Adds a batch of the raw column (the rows of `DatasetSpec.check_columns`)."""

    def merge(self, other: FeatureStatistics) -> None:
        """Adds the statistics of other rows of the same feature."""

    def fitted(self):
        """The fitted feature."""
        return self.feature


class _UnfittedOnly(FeatureStatistics):
    """A feature with nothing to learn (ids, vectors, or fitted already)."""


class _ValueCounts(FeatureStatistics):
    """How often each value occurs: a categorical feature's vocabulary."""

    def __init__(self, feature):
        super().__init__(feature)
        self.counts: collections.Counter = collections.Counter()

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values)
        if values.dtype == object:  # np.unique sorts; mixed str/bytes objects cannot be
            values = values.astype(str)
        unique, counts = np.unique(values, return_counts=True)
        cast = str if self.feature.dtype == STRING else int
        self.counts.update({cast(v): int(c) for v, c in zip(unique.tolist(), counts.tolist())})

    def merge(self, other: _ValueCounts) -> None:
        self.counts.update(other.counts)

    def fitted(self):
        return self.feature.fitted_from_counts(self.counts)


class _Moments(FeatureStatistics):
    """Count, mean and sum of squared deviations of the finite (transformed) values,
    merged exactly (Chan et al.), and a mergeable uniform sample for the quantiles."""

    def __init__(self, feature, *, sample_size: int = QUANTILE_SAMPLE_SIZE, seed: int = 0):
        super().__init__(feature)
        self.count, self.mean, self.squares = 0, 0.0, 0.0
        self.sample_size = sample_size
        self._rng = np.random.default_rng(seed)
        self.sample = np.zeros(0)  # [<= sample_size] values
        self.keys = np.zeros(0)  # [<= sample_size] their random keys; the smallest kept

    def update(self, values: np.ndarray) -> None:
        transformed = self.feature.transform_np(values)
        finite = transformed[np.isfinite(transformed)]
        if finite.size == 0:
            return
        batch = _Moments(self.feature, sample_size=self.sample_size)
        batch.count, batch.mean = finite.size, float(finite.mean())
        batch.squares = float(((finite - batch.mean) ** 2).sum())
        if self.feature.num_buckets is not None:
            batch.sample, batch.keys = finite, self._rng.random(finite.size)
        self.merge(batch)

    def merge(self, other: _Moments) -> None:
        if other.count == 0:
            return
        count = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / count
        self.squares += other.squares + delta**2 * self.count * other.count / count
        self.count = count
        if other.sample.size:
            sample, keys = np.concatenate([self.sample, other.sample]), np.concatenate([self.keys, other.keys])
            if sample.size > self.sample_size:
                kept = np.argpartition(keys, self.sample_size)[: self.sample_size]
                sample, keys = sample[kept], keys[kept]
            self.sample, self.keys = sample, keys

    def fitted(self):
        std = float(np.sqrt(self.squares / self.count)) if self.count else 1.0
        return self.feature.fitted_from_moments(self.count, self.mean, std, self.sample)


class _SequenceElements(FeatureStatistics):
    """The statistics of a sequence's element over its valid (non-padding) positions."""

    def __init__(self, feature, *, seed: int = 0):
        super().__init__(feature)
        self.element = feature.element.statistics(seed=seed)

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values)
        self.element.update(values[self.feature.valid_mask_np(values)])

    def merge(self, other: _SequenceElements) -> None:
        self.element.merge(other.element)

    def fitted(self):
        return dataclasses.replace(self.feature, element=self.element.fitted())


Feature = CategoricalFeature | IdFeature | NumericFeature | SequenceFeature | EmbeddingFeature

_KINDS = {cls.kind: cls for cls in (CategoricalFeature, IdFeature, NumericFeature, SequenceFeature, EmbeddingFeature)}


def feature_to_config(feature: Feature) -> dict[str, Any]:
    config: dict[str, Any] = {"kind": feature.kind}
    for field in dataclasses.fields(feature):
        value = getattr(feature, field.name)
        if field.name == "element":
            value = feature_to_config(value)
        elif isinstance(value, tuple):
            value = list(value)
        config[field.name] = value
    return config


def feature_from_config(config: Mapping[str, Any]) -> Feature:
    config = dict(config)
    kind = config.pop("kind")
    if kind not in _KINDS:
        raise ValueError(f"Unknown feature kind {kind!r}; expected one of {sorted(_KINDS)}.")
    if "element" in config:
        config["element"] = feature_from_config(config["element"])
    return _KINDS[kind](**config)


def _expected_rank(feature: Feature) -> int:
    return 2 if isinstance(feature, (SequenceFeature, EmbeddingFeature)) else 1


def _tf_dtype(dtype: str) -> tf.DType:
    return {STRING: tf.string, INT64: tf.int64, FLOAT32: tf.float32}[dtype]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """The features and binary labels of a dataset.

    `labels` name the label columns; each is one binary task of a multi-task model.
    """

    features: tuple[Feature, ...]
    labels: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "labels", tuple(self.labels))
        names = [f.name for f in self.features]
        duplicates = sorted(n for n, c in collections.Counter(names).items() if c > 1)
        if duplicates:
            raise ValueError(f"Feature names must be unique. Received duplicates: {duplicates}")
        clash = sorted(set(names) & set(self.labels))
        if clash:
            raise ValueError(f"A column cannot be both a feature and a label. Received: {clash}")

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"No feature named {name!r}; the spec has {list(self.feature_names)}.")

    def select(self, names: Iterable[str]) -> DatasetSpec:
        """The spec restricted to `names` (in that order), labels kept."""
        return dataclasses.replace(self, features=tuple(self.feature(n) for n in names))

    @property
    def is_fitted(self) -> bool:
        return all(f.is_fitted for f in self.features)

    def fit(self, columns: Mapping[str, np.ndarray]) -> DatasetSpec:
        """Learns vocabularies and normalisation statistics from `columns`.

        Pass the training split only: validation and test rows must not leak into the
        statistics. Features that are already fitted are kept as they are. (Data that
        arrives in batches: `statistics()`.)
        """
        statistics = self.statistics()
        statistics.update(columns)
        return statistics.fitted()

    def statistics(self, *, seed: int = 0) -> SpecStatistics:
        """An accumulator of the spec's statistics over batches of rows (one streaming pass);
        `seed` seeds the quantile samples (give accumulators of different rows different seeds)."""
        return SpecStatistics(self, seed=seed)

    def check_columns(self, columns: Mapping[str, Any], *, source: str = "") -> int:
        """Checks that `columns` hold every feature with a usable dtype and shape.

        Returns the number of rows. Errors name the feature (and `source`, if given).
        """
        where = f" in {source}" if source else ""
        num_rows = None
        for feature in self.features:
            if feature.name not in columns:
                raise KeyError(f"Missing feature {feature.name!r}{where}; expected {list(self.feature_names)}.")
            values = np.asarray(columns[feature.name])
            rank = _expected_rank(feature)
            if values.ndim != rank:
                raise ValueError(
                    f"Feature {feature.name!r}{where} must have rank {rank} ({feature.kind}); got shape {values.shape}."
                )
            if isinstance(feature, EmbeddingFeature) and values.shape[1] != feature.dim:
                raise ValueError(
                    f"Feature {feature.name!r}{where} must have {feature.dim} columns; got shape {values.shape}."
                )
            dtype = feature.dtype
            ok = (
                values.dtype.kind in "USO"
                if dtype == STRING
                else values.dtype.kind in "iu"
                if dtype == INT64
                else values.dtype.kind in "fiub"
            )
            if not ok:
                raise TypeError(f"Feature {feature.name!r}{where} must hold {dtype} values; got dtype {values.dtype}.")
            if num_rows is None:
                num_rows = len(values)
            elif len(values) != num_rows:
                raise ValueError(
                    f"Feature {feature.name!r}{where} has {len(values)} rows; other features have {num_rows}."
                )
        return num_rows or 0

    def serving_signature(self) -> dict[str, tf.TensorSpec]:
        """Raw, batched inputs of the exported model, keyed by feature name."""
        signature = {}
        for f in self.features:
            if isinstance(f, EmbeddingFeature):
                shape = [None, f.dim]
            elif isinstance(f, SequenceFeature):
                shape = [None, None]
            else:
                shape = [None]
            signature[f.name] = tf.TensorSpec(shape, _tf_dtype(f.dtype), name=f.name)
        return signature

    def to_config(self) -> dict[str, Any]:
        return {"features": [feature_to_config(f) for f in self.features], "labels": list(self.labels)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DatasetSpec:
        return cls(
            features=tuple(feature_from_config(c) for c in config["features"]),
            labels=tuple(config.get("labels", ())),
        )


class SpecStatistics:
    """Every feature's statistics over batches of columns; `fitted()` is the fitted spec.
    Accumulators of the same spec over different rows `merge` (workers, files)."""

    def __init__(self, spec: DatasetSpec, *, seed: int = 0):
        self.spec = spec
        self.features = {f.name: f.statistics(seed=seed) for f in spec.features}
        self.num_rows = 0

    def update(self, columns: Mapping[str, np.ndarray]) -> None:
        self.num_rows += self.spec.check_columns(columns)
        for name, statistics in self.features.items():
            statistics.update(np.asarray(columns[name]))

    def merge(self, other: SpecStatistics) -> None:
        self.num_rows += other.num_rows
        for name, statistics in self.features.items():
            statistics.merge(other.features[name])

    def fitted(self) -> DatasetSpec:
        return dataclasses.replace(self.spec, features=tuple(s.fitted() for s in self.features.values()))


def as_spec(spec: DatasetSpec | Mapping[str, Any]) -> DatasetSpec:
    """Accepts a spec or its config (as stored in layer and model configs)."""
    return spec if isinstance(spec, DatasetSpec) else DatasetSpec.from_config(spec)
