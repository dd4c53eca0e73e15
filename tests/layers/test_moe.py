import numpy as np
import pytest
import tensorflow as tf

from tests.harness import assert_allclose, check_layer
from tfzoo.evaluation import float_ops_per_example
from tfzoo.layers import MixtureOfExperts, TaskSentenceRouter
from tfzoo.layers.moe import recording_routing


def softmax(x):
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def expert_outputs(moe, rows):
    """[rows, E, h]: every expert on every row, in NumPy (relu after every layer)."""
    x = np.repeat(rows[:, None, :], moe.num_experts, axis=1)
    for kernel, bias in zip(moe.experts.kernels, moe.experts.biases):
        x = np.maximum(np.einsum("red,edh->reh", x, kernel.numpy()) + bias.numpy(), 0.0)
    return x


def top_k_gates(logits, k):
    p = softmax(logits)
    idx = np.argsort(-p, axis=-1, kind="stable")[:, :k]
    gates = np.take_along_axis(p, idx, axis=-1)
    return p, idx, gates / gates.sum(axis=-1, keepdims=True)


def reference(moe, x, mask, unit_logits, per_token):
    """NumPy MoE without capacity: every unit mixes its top-k experts with renormalised gates."""
    b, t, d = x.shape
    every = expert_outputs(moe, x.reshape(-1, d)).reshape(b, t, moe.num_experts, -1)  # [b, t, E, h]
    _, idx, gates = top_k_gates(unit_logits, moe.k)
    dense_gates = np.zeros((len(unit_logits), moe.num_experts))
    np.put_along_axis(dense_gates, idx, gates, axis=-1)
    dense_gates = dense_gates.reshape(b, t, -1) if per_token else dense_gates[:, None, :]
    return np.einsum("bteh,bte->bth", every, np.broadcast_to(dense_gates, (b, t, moe.num_experts))) * mask[..., None]


@pytest.fixture
def tokens():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5, 6)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0]], np.float32)
    return x, mask


def test_token_routing_matches_numpy_and_masks_padding(tokens):
    x, mask = tokens
    moe = MixtureOfExperts(6, (8, 3), router="token", top_k=2)
    out = moe(x, mask=mask).numpy()
    router = moe._router_layer
    logits = x.reshape(-1, 6) @ router.kernel.numpy() + router.bias.numpy()  # eq. 5: each token alone
    np.testing.assert_allclose(out, reference(moe, x, mask, logits, per_token=True), atol=1e-5)
    assert np.all(out[mask == 0] == 0.0)
    decisions = moe.route(x, mask=mask)
    np.testing.assert_array_equal(
        np.sort(decisions["expert_indices"].numpy(), -1), np.sort(top_k_gates(logits, 2)[1], -1)
    )
    np.testing.assert_allclose(decisions["gates"].numpy().sum(-1), 1.0, atol=1e-6)


def test_sentence_routing_uses_the_masked_mean_of_the_tokens(tokens):
    x, mask = tokens
    moe = MixtureOfExperts(6, (4,), router="sentence", top_k=3)
    out = moe(x, mask=mask).numpy()
    router = moe._router_layer
    sentence = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)  # eq. 6, padding excluded
    logits = sentence @ router.kernel.numpy() + router.bias.numpy()
    np.testing.assert_allclose(out, reference(moe, x, mask, logits, per_token=False), atol=1e-5)


def test_task_and_task_sentence_routing_depend_on_the_task_only(tokens):
    x, mask = tokens
    task = MixtureOfExperts(6, (4,), router="task", router_options={"num_tasks": 3}, top_k=2)
    ids = np.array([2, 0, 2, 1])
    out = task(x, mask=mask, routing_ids=ids).numpy()
    logits = task._router_layer.task_gate.numpy()[ids]  # eq. 7: one row of the task table
    np.testing.assert_allclose(out, reference(task, x, mask, logits, per_token=False), atol=1e-5)
    # Same task, different inputs: the same experts and gates.
    decisions = task.route(x, routing_ids=ids)
    np.testing.assert_array_equal(decisions["expert_indices"][0], decisions["expert_indices"][2])

    sentence = MixtureOfExperts(6, (4,), router="task_sentence", router_options={"vocabulary_size": 5}, top_k=2)
    token_ids = np.array([[0, 3], [1, 3], [0, 4], [2, 4]])  # (flow, use case) task sentences
    out = sentence(x, mask=mask, routing_ids=token_ids).numpy()
    router = sentence._router_layer
    mean_embedding = router.task_token_embedding.numpy()[token_ids].mean(axis=1)  # eq. 8
    logits = mean_embedding @ router.kernel.numpy() + router.bias.numpy()
    np.testing.assert_allclose(out, reference(sentence, x, mask, logits, per_token=False), atol=1e-5)


def test_dense_router_is_mmoe_with_one_gate_per_task():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 5)).astype(np.float32)
    moe = MixtureOfExperts(4, (6,), router="dense", router_options={"num_gates": 2}, top_k=None)
    out = moe(x).numpy()  # [batch, gates, h]
    router = moe._router_layer
    gates = softmax(np.einsum("bd,gde->bge", x, router.kernel.numpy()) + router.bias.numpy())
    expected = np.einsum("beh,bge->bgh", expert_outputs(moe, x), gates)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    # A gate id per row selects that row's gate.
    selected = moe(x, routing_ids=np.array([1, 0, 1])).numpy()
    np.testing.assert_allclose(selected, expected[[0, 1, 2], [1, 0, 1]], atol=1e-5)


def test_capacity_drops_overflow_in_priority_order_and_counts_it():
    # Router kernel of zeros and a bias making expert 0 first and expert 1 second choice
    # for every token: 6 tokens, top-2, E=4, factor 1 -> capacity ceil(1 * 6 * 2 / 4) = 3.
    # First choices fill expert 0 in token order (tokens 0, 1, 2 kept, 3, 4, 5 dropped),
    # second choices fill expert 1 likewise; 6 of 12 assignments are dropped.
    x = np.random.default_rng(2).normal(size=(6, 3)).astype(np.float32)
    moe = MixtureOfExperts(4, (5,), router="token", top_k=2, capacity_factor=1.0)
    moe(x)
    moe._router_layer.kernel.assign(np.zeros((3, 4), np.float32))
    moe._router_layer.bias.assign(np.array([2.0, 1.0, 0.0, -1.0], np.float32))
    out = moe(x, training=True).numpy()
    p = softmax(np.array([2.0, 1.0]))  # renormalised gates of experts 0 and 1
    every = expert_outputs(moe, x)
    expected = np.zeros((6, 5))
    expected[:3] = p[0] * every[:3, 0] + p[1] * every[:3, 1]
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert moe.dropped_fraction.result().numpy() == pytest.approx(0.5)
    assert moe.expert_usage.result().numpy() == pytest.approx(0.5)  # experts 0 and 1 of 4
    assert moe.max_load.result().numpy() == pytest.approx(2.0)  # half of all assignments on one of 4


def test_padding_takes_no_capacity_with_top1_on_token_sequences():
    # SUPER-MoE use: [batch, tokens, d] with a padding mask, top-1, Switch gates.
    x = np.random.default_rng(3).normal(size=(2, 4, 3)).astype(np.float32)
    mask = np.array([[1, 1, 0, 0], [1, 1, 0, 0]], np.float32)
    moe = MixtureOfExperts(
        2, (5, 3), router="token", top_k=1, capacity_factor=0.5, normalize_gates=False, activate_output=False
    )
    moe(x, mask=mask)
    moe._router_layer.kernel.assign(np.zeros((3, 2), np.float32))
    moe._router_layer.bias.assign(np.array([1.0, 0.0], np.float32))
    # capacity = ceil(0.5 * 8 tokens * 1 / 2) = 2: the 4 real tokens all pick expert 0,
    # tokens (0,0), (0,1) are kept; padding would have taken slots had it been routed.
    out = moe(x, mask=mask, training=True).numpy()
    h = np.maximum(x.reshape(-1, 3) @ moe.experts.kernels[0].numpy()[0] + moe.experts.biases[0].numpy()[0], 0)
    linear = h @ moe.experts.kernels[1].numpy()[0] + moe.experts.biases[1].numpy()[0]  # last layer linear
    gate = softmax(np.array([1.0, 0.0]))[0]  # Switch: the raw probability, not renormalised
    np.testing.assert_allclose(out[0, :2], gate * linear.reshape(2, 4, 3)[0, :2], atol=1e-5)
    assert np.all(out[1] == 0.0) and np.all(out[0, 2:] == 0.0)
    assert moe.dropped_fraction.result().numpy() == pytest.approx(0.5)  # 2 of the 4 real tokens


def test_auxiliary_losses_match_their_formulas(tokens):
    x, mask = tokens
    moe = MixtureOfExperts(6, (4,), router="token", top_k=2, load_balance_weight=0.5, z_loss_weight=0.1)
    moe(x, mask=mask, training=True)
    balance, z = [loss.numpy() for loss in moe.losses]
    router = moe._router_layer
    logits = (x.reshape(-1, 6) @ router.kernel.numpy() + router.bias.numpy())[mask.ravel() > 0]
    p, idx, _ = top_k_gates(logits, 2)
    load = np.zeros(6)
    np.add.at(load, idx.ravel(), 1.0 / 2)
    load /= len(logits)
    assert balance == pytest.approx(0.5 * 6 * np.sum(load * p.mean(0)), rel=1e-5)
    lse = np.log(np.exp(logits).sum(-1))
    assert z == pytest.approx(0.1 * np.mean(lse**2), rel=1e-5)
    moe(x, mask=mask)  # inference adds no loss
    assert moe.losses == []


def test_router_learns_from_the_task_loss(tokens):
    x, mask = tokens
    moe = MixtureOfExperts(6, (4,), router="token", top_k=2, load_balance_weight=0.0)
    moe(x, mask=mask)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(moe(x, mask=mask, training=True) ** 2)
    gradient = tape.gradient(loss, moe._router_layer.kernel)
    assert float(tf.reduce_max(tf.abs(gradient))) > 0.0


def test_expert_cost_grows_with_k_not_with_the_number_of_experts():
    x = tf.random.normal([32, 4, 16])
    ids = tf.zeros([32, 2], tf.int32)

    def flops(num_experts, **options):
        moe = MixtureOfExperts(num_experts, (128,), **options)
        moe(x, routing_ids=ids if options["router"] == "task_sentence" else None)
        return float_ops_per_example(
            lambda a: moe(a, routing_ids=ids if options["router"] == "task_sentence" else None), x
        )

    sparse = {e: flops(e, router="task_sentence", router_options={"vocabulary_size": 3}, top_k=2) for e in (4, 32)}
    capacity = {e: flops(e, router="token", top_k=2, capacity_factor=2.0) for e in (4, 32)}
    dense = {e: flops(e, router="dense", top_k=None) for e in (4, 32)}
    assert sparse[32] < 1.05 * sparse[4]
    assert capacity[32] < 1.3 * capacity[4]  # only the router grows with E
    assert dense[32] > 7.5 * dense[4]


def test_extraction_keeps_each_tasks_experts_and_gates(tokens):
    x, mask = tokens
    moe = MixtureOfExperts(8, (4,), router="task_sentence", router_options={"vocabulary_size": 5}, top_k=2)
    token_ids = np.array([[0, 3], [1, 3], [2, 4], [1, 4]])
    full = moe(x, mask=mask, routing_ids=token_ids).numpy()
    extracted = moe.extract(token_ids)
    assert extracted.num_experts <= 8 and len(extracted.route_experts[0]) == 2
    assert_allclose(extracted(x, route=np.arange(4), mask=mask), full)
    for r in range(4):
        assert_allclose(extracted(x[r : r + 1], route=r, mask=mask[r : r + 1]), full[r : r + 1])
    with pytest.raises(ValueError, match="task-level"):
        token = MixtureOfExperts(8, (4,), router="token")
        token(x)
        token.extract([0])


def test_bad_configurations_are_named():
    with pytest.raises(ValueError, match="top_k"):
        MixtureOfExperts(4, (8,), top_k=5)
    with pytest.raises(ValueError, match="dense router"):
        MixtureOfExperts(4, (8,), router="dense", top_k=2)
    with pytest.raises(ValueError, match="dropless"):
        MixtureOfExperts(4, (8,), router="task", router_options={"num_tasks": 2}, capacity_factor=1.0)
    with pytest.raises(ValueError, match="router"):
        MixtureOfExperts(4, (8,), router="expert_choice")
    moe = MixtureOfExperts(4, (8,), router="task", router_options={"num_tasks": 2})
    with pytest.raises(ValueError, match="routing_ids"):
        moe(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"Received: expert_options=\{'kernel_constraint': 'non_neg'\}"):
        MixtureOfExperts(4, (8,), expert_options={"kernel_constraint": "non_neg"})
    # A bad value fails when the layer is made, not when it builds its experts.
    with pytest.raises(ValueError, match="Received: kernel_regularizer='l3'"):
        MixtureOfExperts(4, (8,), expert_options={"kernel_regularizer": "l3"})


def test_expert_options_reach_the_experts_and_round_trip(tmp_path, tokens):
    x, mask = tokens
    moe = MixtureOfExperts(4, (6,), expert_options={"kernel_regularizer": "l2"}, name="regularised_moe")
    check_layer(moe, x, tmp_path, mask=mask)
    kernel = moe.experts.kernels[0]
    penalty = 0.01 * float(tf.reduce_sum(tf.square(kernel)))  # Keras' "l2" is L2(0.01)
    assert any(abs(float(loss) - penalty) < 1e-5 * penalty for loss in moe.experts.losses)


def test_saved_and_restored_with_each_kind_of_router(tmp_path, tokens):
    x, mask = tokens
    token = MixtureOfExperts(4, (6, 3), router="token", top_k=2, capacity_factor=1.5, name="token_moe")
    check_layer(token, x, tmp_path, mask=mask)
    custom = MixtureOfExperts(
        4, (3,), router=TaskSentenceRouter(4, vocabulary_size=3, embedding_dim=2), top_k=1, name="custom_moe"
    )
    check_layer(custom, x, tmp_path, mask=mask, routing_ids=tf.constant([[0, 1], [1, 2], [2, 0], [0, 0]]))
    dense = MixtureOfExperts(3, (4,), router="dense", router_options={"num_gates": 2}, top_k=None, name="dense_moe")
    check_layer(dense, x[:, 0], tmp_path)


def test_expert_option_objects_are_serialised_in_the_config(tmp_path, tokens):
    x, mask = tokens
    moe = MixtureOfExperts(4, (6,), expert_options={"kernel_regularizer": tf.keras.regularizers.L2(0.5)}, name="l2_moe")
    check_layer(moe, x, tmp_path, mask=mask)
    regularizer = moe.get_config()["expert_options"]["kernel_regularizer"]
    assert regularizer["class_name"] == "L2" and regularizer["config"] == {"l2": 0.5}


def test_recording_routing_gives_each_units_share_per_expert(tokens):
    x, mask = tokens
    moe = MixtureOfExperts(6, (4,), router="token", top_k=2)
    dense = MixtureOfExperts(4, (6,), router="dense", router_options={"num_gates": 2}, top_k=None, name="dense")
    outer, inner = tf.keras.layers.Layer(name="outer"), tf.keras.layers.Layer(name="inner")
    outer.inner, inner.mixture = inner, moe  # a mixture held by other layers is found, named by its path
    with recording_routing(outer) as records, recording_routing(dense) as dense_records:
        moe(x, mask=mask)
        moe(x[:2], mask=mask[:2])
        dense(x[:, 0])
    assert list(records) == [f"inner/{moe.name}"] and list(dense_records) == ["dense"]
    first, second = records[f"inner/{moe.name}"]
    decisions = moe.route(x, mask=mask)
    want = np.zeros([20, 6])
    np.put_along_axis(want, decisions["expert_indices"].numpy(), 0.5, axis=-1)
    np.testing.assert_allclose(first["usage"], want)  # 1 / k on each of a token's top-k experts
    np.testing.assert_array_equal(first["valid"], mask.reshape(-1) > 0)
    assert second["usage"].shape == (10, 6)
    (gates,) = dense_records["dense"]  # [batch * gates, E]: each row's gate probabilities
    assert gates["gates"] == 2 and first["gates"] == 1 and gates["valid"].shape == (8,)
    router = dense._router_layer
    probabilities = softmax(np.einsum("bd,gde->bge", x[:, 0], router.kernel.numpy()) + router.bias.numpy())
    np.testing.assert_allclose(gates["usage"], probabilities.reshape(-1, 4), atol=1e-6)
    moe(x, mask=mask)  # outside the block: nothing more recorded
    assert len(records[f"inner/{moe.name}"]) == 2
