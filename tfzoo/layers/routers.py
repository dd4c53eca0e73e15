"""Routers of `tfzoo.layers.MixtureOfExperts`: gate logits per routing unit.

A router maps the MoE input (and, for task-level routers, integer routing ids) to one
vector of E gate logits per routing unit (GRec, Wang et al., CIKM 2023, eq. 5-8):

| name            | unit    | logits from                                        | paper  |
| --------------- | ------- | -------------------------------------------------- | ------ |
| `token`         | token   | the token itself: x_s W + b                        | eq. 5  |
| `sentence`      | example | the mean of the example's (unpadded) tokens        | eq. 6  |
| `task`          | example | the task id alone                                  | eq. 7  |
| `task_sentence` | example | the mean of the embeddings of the task tokens      | eq. 8  |
| `dense`         | example | the sentence mean, one gate per task (MMoE)        | MMoE   |

Task-level routers (`task`, `task_sentence`) never look at the input, so every row of a
task goes to the same experts with the same gates: that is what makes expert extraction
possible (`MixtureOfExperts.extract`). A custom router subclasses `Router` and is passed
to `MixtureOfExperts(router=...)` as an instance.
"""

from __future__ import annotations

from typing import Any, ClassVar

import tensorflow as tf

from tfzoo.layers.backend import keras


def masked_mean(inputs: tf.Tensor, mask: tf.Tensor | None) -> tf.Tensor:
    """Mean over the token axis of [batch, tokens, d], ignoring padding; [batch, d] as is."""
    if inputs.shape.rank == 2:
        return inputs
    if mask is None:
        return tf.reduce_mean(inputs, axis=1)
    weights = tf.cast(mask, inputs.dtype)[:, :, tf.newaxis]  # [batch, tokens, 1]
    return tf.reduce_sum(inputs * weights, axis=1) / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)  # [batch, d]


class Router(keras.layers.Layer):
    """Base of the routers.

    Class attributes:
      granularity: "token" (one decision per token) or "example" (one decision shared
        by all tokens of an example).
      task_level: the logits depend on the routing ids only (extractable).
      needs_routing_ids: `call` requires `routing_ids`.

    Args:
      num_experts: number of experts E (the width of the logits).

    Call arguments:
      inputs: the MoE input, [batch, d] or [batch, tokens, d].
      mask: [batch, tokens] bool or 0/1, False/0 marking padding tokens.
      routing_ids: int ids for task-level routers (see each router).

    Returns:
      logits: [batch, tokens, E] for token granularity with 3-D inputs, else [batch, E].
    """

    granularity: ClassVar[str] = "example"
    task_level: ClassVar[bool] = False
    needs_routing_ids: ClassVar[bool] = False

    def __init__(self, num_experts: int, **kwargs):
        super().__init__(**kwargs)
        if num_experts < 1:
            raise ValueError(f"`num_experts` must be >= 1. Received: num_experts={num_experts}")
        self.num_experts = num_experts

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_experts=self.num_experts)
        return config


@keras.utils.register_keras_serializable(package="tfzoo")
class TokenRouter(Router):
    """Token-level routing (eq. 5): G_s = x_s W + b, each token on its own."""

    granularity = "token"

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(int(input_shape[-1]), self.num_experts), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(self.num_experts,), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs, mask=None, routing_ids=None):
        return tf.einsum("...d,de->...e", inputs, self.kernel) + self.bias  # [batch, (tokens,) E]


@keras.utils.register_keras_serializable(package="tfzoo")
class SentenceRouter(TokenRouter):
    """Sentence-level routing (eq. 6): G = mean_s(x_s) W + b, shared by the example's tokens.

    The token router's projection applied to the mean of the real tokens.
    """

    granularity = "example"

    def call(self, inputs, mask=None, routing_ids=None):
        return super().call(masked_mean(inputs, mask))  # [batch, E]


class _TaskLevelRouter(Router):
    task_level = True
    needs_routing_ids = True

    def task_logits(self, routing_ids: tf.Tensor) -> tf.Tensor:
        """Logits of each task, [n, E], from its routing ids alone."""
        raise NotImplementedError

    def call(self, inputs, mask=None, routing_ids=None):
        if routing_ids is None:
            raise ValueError(f"{type(self).__name__} {self.name!r} routes by task: pass `routing_ids`.")
        return self.task_logits(routing_ids)


@keras.utils.register_keras_serializable(package="tfzoo")
class TaskRouter(_TaskLevelRouter):
    """Task-level routing (eq. 7): G = GATE(task_id).

    A linear gate of the one-hot task id is one row of a learned [num_tasks, E] logit
    table, which is what this router holds.

    Args:
      num_experts: number of experts E.
      num_tasks: number of task ids; `routing_ids` are int [batch] in [0, num_tasks).
    """

    def __init__(self, num_experts: int, num_tasks: int, **kwargs):
        super().__init__(num_experts, **kwargs)
        if num_tasks < 1:
            raise ValueError(f"`num_tasks` must be >= 1. Received: num_tasks={num_tasks}")
        self.num_tasks = num_tasks

    def build(self, input_shape):
        # Distinct random logits per task, so tasks start on different experts.
        self.task_gate = self.add_weight(
            name="task_gate",
            shape=(self.num_tasks, self.num_experts),
            initializer=keras.initializers.RandomNormal(stddev=0.1),
        )
        super().build(input_shape)

    def task_logits(self, routing_ids):
        ids = tf.reshape(tf.cast(routing_ids, tf.int32), [-1])  # [batch]
        return tf.nn.embedding_lookup(self.task_gate, ids)  # [batch, E] (sharded tables too)

    def get_config(self):
        return {**super().get_config(), "num_tasks": self.num_tasks}


@keras.utils.register_keras_serializable(package="tfzoo")
class TaskSentenceRouter(_TaskLevelRouter):
    """Task-sentence routing (eq. 8): G = GATE(mean_s embedding(task_token_s)).

    A task is a sentence of task tokens, e.g. (flow, use case): tasks that share a token
    share part of their routing, and the router has one embedding per token instead of
    one gate per (flow, use case) pair.

    Args:
      num_experts: number of experts E.
      vocabulary_size: number of task tokens; `routing_ids` are int [batch, S] in
        [0, vocabulary_size), S task tokens per example.
      embedding_dim: width of the task-token embeddings.
    """

    def __init__(self, num_experts: int, vocabulary_size: int, *, embedding_dim: int = 16, **kwargs):
        super().__init__(num_experts, **kwargs)
        if vocabulary_size < 1:
            raise ValueError(f"`vocabulary_size` must be >= 1. Received: vocabulary_size={vocabulary_size}")
        if embedding_dim < 1:
            raise ValueError(f"`embedding_dim` must be >= 1. Received: embedding_dim={embedding_dim}")
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim

    def build(self, input_shape):
        self.task_token_embedding = self.add_weight(
            name="task_token_embedding",
            shape=(self.vocabulary_size, self.embedding_dim),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
        )
        self.kernel = self.add_weight(
            name="kernel", shape=(self.embedding_dim, self.num_experts), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(self.num_experts,), initializer="zeros")
        super().build(input_shape)

    def task_logits(self, routing_ids):
        ids = tf.cast(routing_ids, tf.int32)  # [batch, S]
        sentence = tf.reduce_mean(tf.nn.embedding_lookup(self.task_token_embedding, ids), axis=1)  # [batch, dim]
        return tf.matmul(sentence, self.kernel) + self.bias  # [batch, E]

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size, "embedding_dim": self.embedding_dim}


@keras.utils.register_keras_serializable(package="tfzoo")
class DenseRouter(Router):
    """MMoE gates: softmax(mean_s(x_s) W_g + b_g), one gate g per task, over all experts.

    Args:
      num_experts: number of experts E.
      num_gates: number of gates G (MMoE: one per task).

    Call arguments:
      routing_ids: optional int [batch], the gate of each row. Without it (and G > 1)
        every gate is applied and the logits are [batch, G, E].
    """

    def __init__(self, num_experts: int, num_gates: int = 1, **kwargs):
        super().__init__(num_experts, **kwargs)
        if num_gates < 1:
            raise ValueError(f"`num_gates` must be >= 1. Received: num_gates={num_gates}")
        self.num_gates = num_gates

    def build(self, input_shape):
        width = int(input_shape[-1])
        self.kernel = self.add_weight(
            name="gate_kernel", shape=(self.num_gates, width, self.num_experts), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="gate_bias", shape=(self.num_gates, self.num_experts), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs, mask=None, routing_ids=None):
        sentence = masked_mean(inputs, mask)  # [batch, d]
        if routing_ids is not None:
            ids = tf.reshape(tf.cast(routing_ids, tf.int32), [-1])  # [batch]
            kernel = tf.nn.embedding_lookup(self.kernel, ids)  # [batch, d, E] (sharded tables too)
            return tf.einsum("bd,bde->be", sentence, kernel) + tf.nn.embedding_lookup(self.bias, ids)  # [batch, E]
        logits = tf.einsum("bd,gde->bge", sentence, self.kernel) + self.bias  # [batch, G, E]
        return logits[:, 0] if self.num_gates == 1 else logits

    def get_config(self):
        return {**super().get_config(), "num_gates": self.num_gates}


ROUTERS: dict[str, type[Router]] = {
    "token": TokenRouter,
    "sentence": SentenceRouter,
    "task": TaskRouter,
    "task_sentence": TaskSentenceRouter,
    "dense": DenseRouter,
}
