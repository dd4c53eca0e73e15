import tensorflow as tf

from tfzoo.evaluation import float_ops_per_example


def test_matmul_and_einsum_count_two_flops_per_multiply_add():
    x = tf.ones([4, 3, 5])
    kernel = tf.ones([5, 7])
    # 3 tokens x 5 inputs x 7 outputs multiply-adds per example, 2 flops each.
    assert float_ops_per_example(lambda a: tf.einsum("btd,dh->bth", a, kernel), x) == 2 * 3 * 5 * 7
    assert float_ops_per_example(lambda a: tf.einsum("...d,dh->...h", a, kernel), x) == 2 * 3 * 5 * 7
    assert float_ops_per_example(lambda a: tf.matmul(tf.reshape(a, [-1, 5]), kernel), x) == 2 * 3 * 5 * 7
