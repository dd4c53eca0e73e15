import numpy as np
import pytest
import tensorflow as tf

from tfzoo.data import (
    CategoricalFeature,
    DatasetSpec,
    EmbeddingFeature,
    IdFeature,
    NumericFeature,
    SequenceFeature,
)


def full_spec():
    return DatasetSpec(
        features=(
            CategoricalFeature("color"),
            CategoricalFeature("shop", hash_buckets=16, dtype="int64"),
            IdFeature("item", num_ids=10, embedding_dim=4),
            NumericFeature("price", log1p=True),
            SequenceFeature("history", CategoricalFeature("history"), max_length=3),
            SequenceFeature("gaps", NumericFeature("gaps"), max_length=3),
            EmbeddingFeature("title", dim=2),
        ),
        labels=("click",),
    )


def columns():
    return {
        "color": np.array(["red", "blue", "red", "green"], dtype=object),
        "shop": np.array([3, 4, 5, 6]),
        "item": np.array([1, 2, 3, 99]),
        "price": np.array([0.0, 9.0, np.nan, 99.0], np.float32),
        "history": np.array([["a", "b", ""], ["b", "", ""], ["", "", ""], ["c", "a", "a"]], dtype=object),
        "gaps": np.array([[1.0, 2.0, np.nan]] * 4, np.float32),
        "title": np.zeros((4, 2), np.float32),
    }


def test_config_round_trip_keeps_every_field():
    spec = full_spec().fit(columns())
    assert DatasetSpec.from_config(spec.to_config()) == spec


def test_fit_learns_vocabulary_by_frequency_and_statistics_from_given_rows_only():
    spec = full_spec().fit(columns())
    assert spec.feature("color").vocabulary == ("red", "blue", "green")
    # history elements: a x3, b x2, c x1; padding "" is not a value.
    assert spec.feature("history").element.vocabulary == ("a", "b", "c")
    price = spec.feature("price")
    logs = np.log1p(np.array([0.0, 9.0, 99.0]))  # NaN ignored
    assert price.mean == pytest.approx(logs.mean())
    assert price.std == pytest.approx(logs.std())
    # A column seen as constant must not divide by zero later.
    constant = NumericFeature("c").fitted(np.array([2.0, 2.0]))
    assert constant.std == 1.0


def test_cardinalities():
    spec = full_spec().fit(columns())
    assert spec.feature("color").cardinality == 3 + 1  # vocabulary + 1 OOV bucket
    assert spec.feature("shop").cardinality == 16
    assert spec.feature("item").cardinality == 11
    assert spec.feature("history").cardinality == 3 + 1 + 1  # + OOV + padding


def test_serving_signature_has_raw_dtypes_and_batch_dimension():
    signature = full_spec().serving_signature()
    assert signature["color"] == tf.TensorSpec([None], tf.string, name="color")
    assert signature["shop"].dtype == tf.int64
    assert signature["price"].dtype == tf.float32
    assert signature["history"].shape.as_list() == [None, None]
    assert signature["title"].shape.as_list() == [None, 2]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: CategoricalFeature("a b"), "name='a b'"),
        (lambda: CategoricalFeature("a", vocabulary=("x",), hash_buckets=3), "not both"),
        (lambda: CategoricalFeature("a", num_oov_buckets=0), "num_oov_buckets=0"),
        (lambda: IdFeature("a", num_ids=0), "num_ids=0"),
        (lambda: NumericFeature("a", mean=1.0), "both `mean` and `std`"),
        (lambda: SequenceFeature("s", NumericFeature("s"), max_length=0), "max_length=0"),
        (lambda: EmbeddingFeature("e", dim=0), "dim=0"),
        (lambda: DatasetSpec((NumericFeature("a"), NumericFeature("a"))), "duplicates: ['a']"),
        (lambda: DatasetSpec((NumericFeature("a"),), labels=("a",)), "both a feature and a label"),
    ],
)
def test_invalid_definitions_name_the_argument(make, message):
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")
    ):
        make()


def test_check_columns_names_the_feature_at_fault():
    spec = full_spec()
    bad = columns()
    del bad["price"]
    with pytest.raises(KeyError, match="Missing feature 'price' in train.csv"):
        spec.check_columns(bad, source="train.csv")
    bad = columns()
    bad["title"] = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="'title'.*2 columns"):
        spec.check_columns(bad)
    bad = columns()
    bad["item"] = np.array(["1", "2", "3", "4"])
    with pytest.raises(TypeError, match="'item' must hold int64"):
        spec.check_columns(bad)


def test_numeric_buckets_are_training_quantiles_in_standardised_units():
    values = np.arange(1.0, 101.0)  # mean 50.5, std 28.866
    feature = NumericFeature("x", num_buckets=4).fitted(values)
    expected = (np.quantile(values, [0.25, 0.5, 0.75]) - 50.5) / values.std()
    np.testing.assert_allclose(feature.boundaries, expected, atol=1e-6)
    assert feature.num_bucket_indices == 4
    # A spike (mostly zeros) collapses duplicate quantiles instead of making empty buckets.
    spiky = NumericFeature("y", num_buckets=8).fitted(np.r_[np.zeros(95), np.arange(5.0)])
    assert len(spiky.boundaries) < 7
    assert DatasetSpec((feature,)).to_config()["features"][0]["boundaries"] == list(feature.boundaries)
    with pytest.raises(ValueError, match="num_buckets=1"):
        NumericFeature("z", num_buckets=1)


def test_bucket_boundaries_keep_clear_of_the_values_of_an_integer_column():
    # Quantiles of an integer-valued column are data values (age 21 was one): a boundary on
    # a value let float rounding put it in either bucket, and the served graph disagreed
    # with training. Such a boundary moves halfway to the next value.
    values = np.repeat(np.arange(10.0), 10)
    feature = NumericFeature("age", num_buckets=4).fitted(values)
    standardised = (np.arange(10.0) - values.mean()) / values.std()
    gap = standardised[1] - standardised[0]
    distance = np.abs(np.asarray(feature.boundaries)[:, None] - standardised[None, :]).min(axis=1)
    np.testing.assert_allclose(distance, gap / 2, atol=1e-5)  # halfway between two values
    np.testing.assert_allclose(
        np.asarray(feature.boundaries) * values.std() + values.mean(), [2.5, 4.5, 7.5], atol=1e-4
    )
    # The same bucket for every value eagerly and in a traced graph.
    raw = tf.constant(np.arange(10.0), tf.float32)
    buckets = tf.raw_ops.Bucketize(input=feature.preprocess(raw), boundaries=list(feature.boundaries))
    traced = tf.function(
        lambda x: tf.raw_ops.Bucketize(input=feature.preprocess(x), boundaries=list(feature.boundaries))
    )
    np.testing.assert_array_equal(buckets.numpy(), traced(raw).numpy())
    np.testing.assert_array_equal(buckets.numpy(), [0, 0, 0, 1, 1, 2, 2, 2, 3, 3])


def test_every_kind_encodes_itself_to_its_declared_width():
    # Each kind owns its preprocessing and encoding (no switch over feature classes
    # elsewhere): a fitted feature preprocesses its own example values and encodes them
    # to exactly `encoded_width` columns, with the embedding table it declares.
    spec = DatasetSpec(
        features=(*full_spec().features, NumericFeature("age", num_buckets=4), IdFeature("seller", num_ids=3)),
        labels=("click",),
    )
    spec = spec.fit({f.name: f.example_values(6) for f in spec.features})
    for feature in spec.features:
        lookup = feature.lookup_layer()
        inputs = feature.preprocess(tf.constant(feature.example_values(6)), lookup)
        table = None
        if feature.embedding_rows:
            table = tf.keras.layers.Embedding(feature.embedding_rows, feature.embedding_width(5))
        encoded = feature.encode(inputs, table)
        assert encoded.shape == (6, feature.encoded_width(5)), feature.name
        assert np.isfinite(encoded.numpy()).all(), feature.name
    by_name = {f.name: f for f in spec.features}
    assert by_name["history"].modality == "categorical" and by_name["history"].is_sequence
    assert by_name["gaps"].modality == "numeric" and by_name["gaps"].embedding_rows == 0
    assert by_name["age"].encoded_width(5) == 1 + 5 and by_name["price"].encoded_width(5) == 1


def test_no_switch_over_feature_classes_outside_the_features_module():
    import re
    from pathlib import Path

    import tfzoo

    pattern = re.compile(
        r"isinstance\([^)]*\b(CategoricalFeature|IdFeature|NumericFeature|SequenceFeature|EmbeddingFeature)\b"
    )
    package = Path(tfzoo.__file__).parent
    offenders = [
        f"{path.relative_to(package)}:{number}"
        for path in package.rglob("*.py")
        if path.name != "features.py" or path.parent.name != "data"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, f"switch on the feature's kind through its methods instead: {offenders}"


def test_every_kind_gives_the_baselines_its_columns():
    spec = DatasetSpec(
        features=(*full_spec().features, NumericFeature("age", num_buckets=2)),
        labels=("click",),
    )
    raw = {**columns(), "age": np.array([1.0, 2.0, 3.0, 4.0], np.float32)}
    spec = spec.fit(raw)
    from tfzoo.data.preprocessing import FeaturePreprocessor

    inputs = {k: v.numpy() for k, v in FeaturePreprocessor(spec)({k: tf.constant(v) for k, v in raw.items()}).items()}
    by_name = {f.name: f.baseline_columns(inputs[f.name]) for f in spec.features}
    # Categorical: one-hot of the index for linear models; the index, a category, for trees.
    color = by_name["color"]
    assert color.linear.shape == (4, spec.feature("color").cardinality)
    np.testing.assert_array_equal(color.linear.toarray().argmax(axis=1), inputs["color"])
    np.testing.assert_array_equal(color.trees[:, 0], inputs["color"])
    assert color.categorical.tolist() == [True]
    # An id: its one-hot row, nothing for trees (its number orders nothing).
    assert by_name["item"].linear.shape == (4, 11) and by_name["item"].linear[3, 10] == 1
    assert by_name["item"].trees.shape == (4, 0)
    # Numeric: the standardised value; with buckets, also the bucket's one-hot (linear).
    np.testing.assert_allclose(by_name["price"].linear.toarray()[:, 0], inputs["price"])
    assert by_name["price"].categorical.tolist() == [False]
    age = by_name["age"]
    assert age.linear.shape == (4, 1 + 2) and (age.linear[:, 1:].sum(axis=1) == 1).all() and age.trees.shape == (4, 1)
    # A categorical sequence: each index's share of the row's real positions; trees get the length.
    history = by_name["history"]
    bags = history.linear.toarray()
    np.testing.assert_allclose(bags.sum(axis=1), [1, 1, 0, 1])
    a = inputs["history"][0, 0]  # "a" is the first element of row 0 and two of row 3's three
    assert bags[0, a] == pytest.approx(0.5) and bags[3, a] == pytest.approx(2 / 3)
    np.testing.assert_array_equal(history.trees[:, 0], [2, 1, 0, 3])
    # A numeric sequence: the mean the encoder pools; an embedding: its vector.
    np.testing.assert_allclose(by_name["gaps"].trees[:, 0], inputs["gaps"].mean(axis=1))
    assert by_name["title"].linear.shape == (4, 2) and by_name["title"].trees.shape == (4, 2)


def test_statistics_over_batches_or_merged_equal_one_fit():
    # Streaming fits (`tfzoo.data.streaming`) update statistics batch by batch and merge
    # those of different files: the fitted spec is the in-memory one.
    rng = np.random.default_rng(0)
    columns = {
        "color": rng.choice(["red", "green", "blue", "rare"], 5000, p=[0.5, 0.3, 0.1995, 0.0005]).astype(object),
        "price": np.where(rng.random(5000) < 0.1, np.nan, rng.lognormal(size=5000)).astype(np.float32),
    }
    spec = DatasetSpec(
        features=(CategoricalFeature("color", min_count=3, max_tokens=2), NumericFeature("price", num_buckets=5))
    )
    whole = spec.fit(columns)
    left, right = spec.statistics(seed=1), spec.statistics(seed=2)
    for start in range(0, 3000, 700):
        left.update({k: v[start : min(start + 700, 3000)] for k, v in columns.items()})
    right.update({k: v[3000:] for k, v in columns.items()})
    left.merge(right)
    merged = left.fitted()
    assert left.num_rows == 5000
    assert merged.feature("color").vocabulary == whole.feature("color").vocabulary == ("red", "green")
    price, expected = merged.feature("price"), whole.feature("price")
    assert price.mean == pytest.approx(expected.mean, rel=1e-9) and price.std == pytest.approx(expected.std, rel=1e-9)
    assert price.boundaries == expected.boundaries  # every value kept below the sample size: exact


def test_quantile_sample_above_its_size_stays_uniform():
    from tfzoo.data.features import _Moments

    values = np.random.default_rng(0).normal(size=60_000)
    feature = NumericFeature("x", num_buckets=4)
    parts = [_Moments(feature, sample_size=5_000, seed=s) for s in range(3)]
    for i, part in enumerate(parts):
        part.update(values[i * 20_000 : (i + 1) * 20_000])
    parts[0].merge(parts[1])
    parts[0].merge(parts[2])
    assert parts[0].count == 60_000 and parts[0].sample.size == 5_000
    boundaries = parts[0].fitted().boundaries  # the normal's quartiles, standardised: -0.674, 0, 0.674
    np.testing.assert_allclose(boundaries, [-0.674, 0.0, 0.674], atol=0.05)
