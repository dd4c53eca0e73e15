"""SSMTL friend retrieval on a Twitch MUSAE graph: train, evaluate Recall@K, export with its index.

    python recipes/ssmtl_twitch.py --data PATH/twitch_musae/ES [--steps 2000] [--export-base savedmodels]
    python recipes/ssmtl_twitch.py --demo          # generated friend graph, < 60 s on 2 cores

Splits the friendships per user (10% validation, 10% test, seed 0), trains
`SSMTLRetrieval` (GATv2 encoder on 2-hop subgraphs, fan-out [10, 5]; retrieval + CCA-SSG +
GraphMAE, eq. 6) on directed training friendships, reports test Recall@10/50/100 overall
and on the low-degree slice, and exports `<export-base>/ssmtl_retrieval/<version>/` (ScaNN
index) and `ssmtl_retrieval_brute_force/<version>/` (exact, TensorFlow only) over every
user and every known friendship. `--demo` does the same on a generated graph
(`tfzoo.data.make_friend_graph`, redistributable) with tiny sizes.
"""

import argparse

import numpy as np
import tensorflow as tf

import tfzoo
from tfzoo.export.retrieval import export_friend_retrieval, user_embeddings
from tfzoo.graph import DEFAULT_FANOUTS, SubgraphSampler, directed_pairs
from tfzoo.models.ssmtl import SSMTLRetrieval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a Twitch region folder (DE, ENGB, ES)")
    parser.add_argument("--steps", type=int, default=2000, help="training batches")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--cca-weight", type=float, default=1.0)
    parser.add_argument("--mae-weight", type=float, default=30.0)
    parser.add_argument("--export-base", default="savedmodels")
    parser.add_argument("--demo", action="store_true", help="a generated graph and tiny sizes")
    args = parser.parse_args()

    if args.demo:
        graph = tfzoo.data.make_friend_graph(400, num_communities=8, feature_dim=64, mean_degree=8, seed=0)
        steps, batch_size, fanouts, dims = 20, 64, (4, 3), 16
    elif args.data:
        graph = tfzoo.data.read_twitch(args.data)
        steps, batch_size, fanouts, dims = args.steps, args.batch_size, DEFAULT_FANOUTS, 64
    else:
        parser.error("pass --data with a Twitch region folder, or --demo")
    splits = tfzoo.data.split_friendships(graph, validation_share=0.1, test_share=0.1, seed=0)
    print(splits.split)

    tf.keras.utils.set_random_seed(0)
    sampler = SubgraphSampler(splits.train, fanouts=fanouts, seed=0)
    train = sampler.friendship_dataset(directed_pairs(splits.train.edges), batch_size=batch_size, shuffle_seed=0,
                                       repeat=True)
    model = SSMTLRetrieval(feature_dim=graph.features.dim, hidden_dim=dims, embedding_dim=dims,
                           cca_weight=args.cca_weight, mae_weight=args.mae_weight)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    model.fit(train, steps_per_epoch=steps, epochs=1, verbose=2)

    embeddings = user_embeddings(model, sampler)
    report = tfzoo.evaluation.recall_report(embeddings, splits.test, train_edges=splits.train.edges,
                                            exclude_edges=[splits.validation])
    metrics = [f"recall@{k}" for k in (10, 50, 100)]
    print(tfzoo.evaluation.format_task_table([("ssmtl (test)", report)], metrics=metrics))
    print(f"chance recall@100: {100 / graph.num_users:.4f}")

    # Serving knows every friendship: embed and exclude from the whole graph.
    served = user_embeddings(model, SubgraphSampler(graph, fanouts=fanouts, seed=0))
    name = "ssmtl_demo" if args.demo else "ssmtl_retrieval"
    scann = export_friend_retrieval(model, graph, args.export_base, name, fanouts=fanouts, embeddings=served)
    brute = export_friend_retrieval(model, graph, args.export_base, f"{name}_brute_force", version=int(scann.name),
                                    index="brute_force", fanouts=fanouts, embeddings=served)
    print(f"exported {scann} and {brute}")
    print("friends of user 0:", np.asarray(tf.saved_model.load(str(brute)).signatures["serving_default"](
        user_ids=tf.constant([0], tf.int64))["friend_ids"])[0][:10])


if __name__ == "__main__":
    main()
