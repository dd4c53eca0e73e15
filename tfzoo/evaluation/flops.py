"""Floating-point operations of a traced TensorFlow function (TF's graph profiler).

FLOPs are counted by `tf.compat.v1.profiler` on the graph of a concrete function traced
with static shapes: each op contributes its registered float-op count (MatMul 2mnk, an
add one per element, ...). The profiler has no rule for `Einsum`, which all zoo layers
use for batched expert weights and attention; this module registers one: for a
two-operand einsum, 2 x the product of the sizes of all distinct indices (one multiply
and one add per term of each output element), for a one-operand einsum the input size.
Gathers, scatters, reshapes and lookups cost 0, as elsewhere in the profiler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import graph_util, ops


def _einsum_flops(graph, node):
    equation = node.attr["equation"].s.decode()
    inputs_part = equation.split("->")[0].split(",")
    shapes = []
    for name in node.input[: len(inputs_part)]:
        shape = graph_util.tensor_shape_from_node_def_name(graph, name)
        shape.assert_is_fully_defined()
        shapes.append(shape.as_list())
    sizes: dict[str, int] = {}
    for part, shape in zip(inputs_part, shapes):
        if "..." in part:
            # Broadcast dimensions, aligned from the right across operands: name them
            # with characters no equation uses.
            head, tail = part.split("...")
            count = len(shape) - len(head) - len(tail)
            part = head + "".join(chr(0x100 + count - 1 - i) for i in range(count)) + tail
        for index, size in zip(part, shape):
            sizes[index] = max(sizes.get(index, 1), int(size))
    terms = int(np.prod(list(sizes.values()), dtype=np.int64))
    return ops.OpStats("flops", terms * 2 if len(inputs_part) > 1 else terms)


def _register_einsum() -> None:
    try:
        ops.RegisterStatistics("Einsum", "flops")(_einsum_flops)
    except KeyError:  # already registered (module reloaded)
        pass


_register_einsum()


def count_float_ops(function: tf.types.experimental.ConcreteFunction) -> int:
    """Float ops of one call of `function` (a concrete function with static shapes)."""
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=function.graph, options=options)
    return int(profile.total_float_ops)


def float_ops_per_example(fn: Callable, inputs, *, batch_size: int | None = None) -> float:
    """Float ops of `fn(inputs)` divided by the batch size, traced with `inputs`' shapes.

    Args:
      fn: a Python or `tf.function` callable of one (nested) tensor argument.
      inputs: a (nested) batch of tensors; their static shapes are the traced shapes.
      batch_size: examples in `inputs`; default the leading dimension of the first tensor.
    """
    fn = getattr(fn, "python_function", fn)  # trace a tf.function's body, not a call to it
    flat = tf.nest.flatten(inputs)
    batch_size = batch_size or int(flat[0].shape[0])
    signature = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), inputs)
    concrete = tf.function(fn).get_concrete_function(signature)
    return count_float_ops(concrete) / batch_size


def flops_per_example_of_model(model: tf.keras.Model, features: Mapping[str, tf.Tensor]) -> float:
    """Inference float ops per example of `model(features, training=False)`."""
    return float_ops_per_example(lambda f: model(f, training=False), dict(features))
