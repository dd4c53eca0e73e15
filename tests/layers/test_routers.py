import numpy as np
import pytest

from tests.harness import check_layer
from tfzoo.layers import DenseRouter, SentenceRouter, TaskRouter, TaskSentenceRouter, TokenRouter


@pytest.fixture
def tokens():
    rng = np.random.default_rng(0)
    return rng.normal(size=(3, 4, 5)).astype(np.float32), np.array([[1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 0, 0]], bool)


def test_input_routers_give_logits_per_token_or_per_sentence(tokens):
    x, mask = tokens
    token = TokenRouter(6)
    logits = token(x, mask=mask).numpy()
    np.testing.assert_allclose(logits, x @ token.kernel.numpy() + token.bias.numpy(), atol=1e-5)  # [3, 4, 6]
    sentence = SentenceRouter(6)
    mean = np.stack([x[i][mask[i]].mean(0) for i in range(3)])  # padding excluded
    np.testing.assert_allclose(
        sentence(x, mask=mask).numpy(), mean @ sentence.kernel.numpy() + sentence.bias.numpy(), atol=1e-5
    )
    dense = DenseRouter(6, num_gates=2)
    every = dense(x, mask=mask).numpy()  # [3, 2, 6]
    np.testing.assert_allclose(
        every, np.einsum("bd,gde->bge", mean, dense.kernel.numpy()) + dense.bias.numpy(), atol=1e-5
    )
    np.testing.assert_allclose(
        dense(x, mask=mask, routing_ids=np.array([1, 1, 0])).numpy(), every[[0, 1, 2], [1, 1, 0]], atol=1e-5
    )


def test_task_routers_ignore_the_input(tokens, tmp_path):
    x, _ = tokens
    task = TaskRouter(6, num_tasks=4)
    ids = np.array([3, 0, 3])
    logits = task(x, routing_ids=ids).numpy()
    np.testing.assert_allclose(logits, task.task_gate.numpy()[ids])
    np.testing.assert_allclose(task(x * 0.0, routing_ids=ids).numpy(), logits)
    sentence = TaskSentenceRouter(6, vocabulary_size=5, embedding_dim=3, name="task_sentence_router")
    token_ids = np.array([[0, 3], [1, 3], [0, 4]])
    logits = check_layer(sentence, x, tmp_path, routing_ids=token_ids).numpy()
    embedding = sentence.task_token_embedding.numpy()
    expected = (
        embedding[token_ids[:, 0]] + embedding[token_ids[:, 1]]
    ) / 2 @ sentence.kernel.numpy() + sentence.bias.numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    with pytest.raises(ValueError, match="routing_ids"):
        task(x)
