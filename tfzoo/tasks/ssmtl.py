"""Friend retrieval over a friend graph (SSMTL-EBR, `tfzoo.models.SSMTLRetrieval`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from tfzoo.data.friend_graph import FriendGraph, FriendshipSplits
from tfzoo.data.registry import FRIEND_GRAPH_DATASETS
from tfzoo.evaluation.fusion import check_fusion, fused_reports
from tfzoo.evaluation.heuristics import heuristic_reports
from tfzoo.evaluation.retrieval import DEFAULT_KS, recall_report
from tfzoo.export.retrieval import Fusion, export_friend_retrieval
from tfzoo.graph.sampling import DEFAULT_FANOUTS, SubgraphSampler, directed_pairs
from tfzoo.models.ssmtl import calibrated_weights, encoder_gradient_norms
from tfzoo.training.config import RunConfig, make_optimizer
from tfzoo.training.task import FitData, ModelTask, Prepared, TaskInputs, constructor_options

EVALUATION_BATCH = 512  # subgraphs per encoder call when friend retrieval embeds every user
# The whole friend graph, saved with the run: what the export indexes and excludes.
GRAPH_FILE = "graph.npz"
METRICS_FILE = "metrics.json"

# `tfzoo train ssmtl`'s model options where the user gives none (`bench/ssmtl_ablation.py
# --grid levers` measures what each one is worth); `id_buckets` defaults to one row per
# user of the graph; `fusion` names the heuristic the export adds to the model's score (with
# the candidate's popularity, each weighted as chosen on validation).
# `cca_scale` / `mae_scale` set eq. 6's beta / gamma by calibration (`SSMTL_CALIBRATION`);
# an explicit `cca_weight` / `mae_weight` takes precedence.
SSMTL_DEFAULTS = {
    "readout": "concat",
    "message_passing": "to_root",
    "dropout": 0.2,
    "candidate_bias": True,
    "logq_correction": True,
    # The paper's self-supervised objectives are off: on Twitch ES, ENGB and DE (13 seeds,
    # docs/ssmtl.md) they did not help this model and cost cold-start users a little.
    # `cca_scale=0.1, mae_scale=0.1` trains the paper's model.
    "cca_scale": 0.0,
    "mae_scale": 0.0,
    "ssl_batch_size": 32,
    "mae_decoder_dim": 64,
    "fusion": "adamic_adar",
}
# Batches over which the objectives' encoder-gradient norms are averaged at initialisation.
SSMTL_CALIBRATION_BATCHES = 8


@dataclasses.dataclass(frozen=True)
class FriendGraphInputs(TaskInputs):
    """What a friend-retrieval run's model is built from: the sampling (`fanouts`,
    `uniform_negatives`), the heuristic the export fuses with the model (`fusion`, "none"
    for the model alone), the graph's feature width and the model's constructor options
    with the calibrated eq. 6 weights (and the scales they came from)."""

    fanouts: tuple[int, ...]
    feature_dim: int
    model_options: Mapping[str, Any]
    uniform_negatives: int = 0
    fusion: str = SSMTL_DEFAULTS["fusion"]
    calibration_scales: Mapping[str, float] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> FriendGraphInputs:
        # Runs stored before the inputs were typed repeat where their data came from; the
        # run's `RunConfig` says it.
        legacy = ("dataset", "data_path", "split_seed", "data_options")
        return super().from_config({k: v for k, v in config.items() if k not in legacy})


def _friendship_batches(
    sampler: SubgraphSampler, graph: FriendGraph, config: RunConfig, uniform_negatives: int
) -> tf.data.Dataset:
    return sampler.friendship_dataset(
        directed_pairs(graph.edges),
        batch_size=config.batch_size,
        shuffle_seed=config.seed,
        uniform_negatives=uniform_negatives,
    )


class FriendRetrievalTask(ModelTask):
    """Friend retrieval over a friend graph (`tfzoo.models.SSMTLRetrieval`).

    The dataset is a `FriendshipSplits` (`twitch`, `friend_graph`). Training batches are
    directed training friendships with k-hop subgraphs sampled around both users from the
    training graph; the report is Recall@K of the held-out friendships among all users
    (`tfzoo.evaluation.recall_report`), overall and on the low-degree slice, from the
    vectors the export serves (`SSMTLRetrieval.user_vectors`, the same sampling seed).
    The baselines are the link-prediction heuristics of `tfzoo.evaluation.heuristics`.

    Model options: `fanouts` (default `[10, 5]`) sets the sampling,
    `uniform_negatives` (default 0) adds uniformly drawn negatives to every batch and
    `fusion` (default `adamic_adar`; `none` to serve the model alone) names the
    neighbourhood heuristic whose score the export adds to the model's, with the
    candidate's log degree, both weights chosen on validation after training
    (`fused_reports`; 0 included); the others go to the model's
    constructor, over `SSMTL_DEFAULTS` (with `id_buckets` one per user).

    The whole graph is saved with the run (`graph.npz`): the export indexes every user
    and excludes every known friendship from it without reading the dataset again.
    """

    inputs_type = FriendGraphInputs
    metric_names = tuple(f"recall@{k}" for k in DEFAULT_KS)
    validation_metric = "val_recall@50"
    # In-batch negatives: 256 pairs per batch; the model peaks after a few epochs, so at
    # most 12, stopping 2 epochs after the best (docs/ssmtl.md).
    run_defaults = {"epochs": 12, "batch_size": 256, "patience": 2}
    accepted_datasets = FRIEND_GRAPH_DATASETS
    data_config_kinds = ("friend_graph",)
    # Options of the run rather than of the model's constructor (see the class docstring).
    run_options = ("fanouts", "uniform_negatives", "cca_scale", "mae_scale", "fusion")
    # `target_recall`: the ScaNN index searches the fewest leaves that reach it; `fusion`:
    # a `Fusion` to serve, "none" for the model alone, None (default) for the run's choice.
    export_options = ("target_recall", "fusion", "recall_latency")

    def model_options(self) -> tuple[str, ...]:
        return tuple(sorted({*constructor_options(self.model_class, set_by_task=("feature_dim",)), *self.run_options}))

    def prepare(self, config: RunConfig, inputs: FriendGraphInputs | None) -> Prepared:
        data = self.load_data(config)
        options = {**SSMTL_DEFAULTS, "id_buckets": data.graph.num_users, **config.model_options}
        fanouts = tuple(int(f) for f in options.pop("fanouts", DEFAULT_FANOUTS))
        uniform_negatives = int(options.pop("uniform_negatives", 0))
        fusion = self._fusion_heuristic(options.pop("fusion"))
        scales = {name: options.pop(f"{name}_scale") for name in ("cca", "mae") if f"{name}_scale" in options}
        # One sampler for the calibration batches and the training stream: building and
        # tracing a sampler costs seconds, sampling with it milliseconds.
        sampler = SubgraphSampler(data.train, fanouts=fanouts, seed=config.seed)
        first_batches = _friendship_batches(sampler, data.train, config, uniform_negatives).take(
            SSMTL_CALIBRATION_BATCHES
        )
        if inputs is None:
            # A new run: the calibrated weights are computed once and stored with the run.
            options.update(self._calibrated_weights(config, options, scales, first_batches, data.graph.features.dim))
            inputs = FriendGraphInputs(
                fanouts=fanouts,
                feature_dim=data.graph.features.dim,
                model_options=options,
                uniform_negatives=uniform_negatives,
                fusion=fusion or "none",
                calibration_scales=scales,
            )
        steps_per_epoch = max(1, 2 * data.train.num_friendships // config.batch_size)
        model = self._model(config, inputs, next(iter(first_batches)), steps_per_epoch=steps_per_epoch)
        return Prepared(model=model, inputs=inputs, data=data, split=data.split, cache={"train_sampler": sampler})

    def build(self, config: RunConfig, inputs: FriendGraphInputs, directory: Path) -> tf.keras.Model:
        graph = self.run_graph(config, directory)
        sampler = SubgraphSampler(graph, fanouts=inputs.fanouts, seed=config.seed)
        batch = next(iter(_friendship_batches(sampler, graph, config, inputs.uniform_negatives)))
        return self._model(config, inputs, batch, steps_per_epoch=1)

    def _model(
        self, config: RunConfig, inputs: FriendGraphInputs, batch: Mapping[str, Any], *, steps_per_epoch: int
    ) -> tf.keras.Model:
        model = self.model_class(feature_dim=inputs.feature_dim, **dict(inputs.model_options))
        model.compile(optimizer=make_optimizer(config, steps_per_epoch))
        # One loss evaluation builds every objective's layers, so a checkpoint restores at once.
        model.build_objectives(batch)
        return model

    def save_artifacts(self, prepared: Prepared, directory: Path) -> None:
        prepared.data.graph.save(directory / GRAPH_FILE)

    @staticmethod
    def run_graph(config: RunConfig, directory: Path) -> FriendGraph:
        """The whole friend graph of the run in `directory` (every friendship: at serving
        time all are known), as saved with it; a run saved before graphs were kept with
        runs rebuilds it from its dataset, with the run's data options."""
        path = Path(directory) / GRAPH_FILE
        if path.exists():
            return FriendGraph.load(path)
        return FriendRetrievalTask.load_data(config).graph

    @staticmethod
    def _calibrated_weights(
        config: RunConfig, options: dict, scales: dict, batches: tf.data.Dataset, feature_dim: int
    ) -> dict[str, float]:
        """`cca_weight` / `mae_weight` from their scales (`calibrated_weights`: scale x
        retrieval's encoder-gradient norm over the objective's, at initialisation), for
        the objectives the user gave no explicit weight."""
        wanted = {name: scale for name, scale in scales.items() if f"{name}_weight" not in config.model_options}
        if not any(wanted.values()):
            return {f"{name}_weight": 0.0 for name in wanted}
        norms = encoder_gradient_norms({**options, "feature_dim": feature_dim}, batches)
        weights = calibrated_weights(norms, cca=wanted.get("cca", 0.0), mae=wanted.get("mae", 0.0))
        return {f"{name}_weight": weights[f"{name}_weight"] for name in wanted}

    def datasets(self, prepared: Prepared, config: RunConfig, *, initial_epoch: int = 0) -> FitData:
        data = prepared.data
        pairs = directed_pairs(data.train.edges)
        negatives = prepared.inputs.uniform_negatives
        fanouts = prepared.inputs.fanouts

        def replica_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
            # Each input pipeline (worker) samples its share of each epoch's batches of pairs
            # (every n-th per-replica batch of the one shuffled order, so that a step's
            # replicas hold what one device's global batch would), and the sampler's seed
            # differs per pipeline so that they draw independently; a parameter-server
            # worker's index is a tensor (`distribute.per_replica_input`), which cannot seed
            # the sampler: its workers share the seed (their roots differ).
            # A new sampler: its graph tensors are built from the NumPy graph inside the
            # caller's trace, so a parameter-server worker holds its own copy. Epochs follow
            # each other without end, so every batch is full anyway; an unknown batch size
            # lets the parameter-server coordinator build placeholder GraphTensors (TF-GNN
            # cannot make an empty value of a fixed size).
            index = context.input_pipeline_id
            seed = config.seed + (1000 * index if isinstance(index, int) else 0)
            sampler = SubgraphSampler(data.train, fanouts=fanouts, seed=seed)
            return sampler.friendship_dataset(
                pairs,
                batch_size=context.get_per_replica_batch_size(config.batch_size),
                shuffle_seed=config.seed,
                repeat=True,
                first_epoch=initial_epoch,
                drop_remainder=False,
                uniform_negatives=negatives,
                shard=(index, context.num_input_pipelines),
            )

        train = prepared.cache["train_sampler"].friendship_dataset(
            pairs,
            batch_size=config.batch_size,
            shuffle_seed=config.seed,
            repeat=True,
            first_epoch=initial_epoch,
            uniform_negatives=negatives,
        )
        # No Keras validation pass: its in-batch loss is noisy and costs a sampled epoch of
        # validation pairs; early stopping follows the exact validation Recall@50 instead.
        return FitData(train=train, steps_per_epoch=max(1, len(pairs) // config.batch_size), replica_fn=replica_fn)

    def user_vectors(self, prepared: Prepared) -> tuple[np.ndarray, np.ndarray]:
        """([users, d], [users, d]) every user's query and candidate vectors from the
        training graph, from subgraphs sampled as the export samples them. The subgraphs
        are sampled once per run and reused, so that every epoch's validation score and
        the final reports see the same ones (epochs differ by their weights only)."""
        subgraphs = prepared.cache.get("evaluation_subgraphs")
        if subgraphs is None:
            sampler = SubgraphSampler(prepared.data.train, fanouts=prepared.inputs.fanouts, seed=0)
            users = np.arange(prepared.data.train.num_users)
            subgraphs = [
                sampler(tf.constant(users[start : start + EVALUATION_BATCH]))
                for start in range(0, len(users), EVALUATION_BATCH)
            ]
            prepared.cache["evaluation_subgraphs"] = subgraphs
        return prepared.model.vectors(subgraphs)

    def report(self, prepared: Prepared, split: str, *, per_user: bool = False) -> dict:
        data = prepared.data
        queries, candidates = self.user_vectors(prepared)
        return recall_report(
            queries,
            data.held_out(self._held_out(split)),
            train_edges=data.train.edges,
            exclude_edges=[self._other(data, split)],
            candidate_embeddings=candidates,
            slices=self._slices(data),
            per_user=per_user,
        )

    def headline(self, report: Mapping[str, Mapping[str, float]]) -> tuple[str, float]:
        return "Recall@50 (all users)", float(report["all"]["recall@50"])

    def validation_score(self, prepared: Prepared) -> float:
        return self.headline(self.report(prepared, "validation"))[1]

    def fused_reports(self, prepared: Prepared, *, per_user: bool = False) -> dict | None:
        """The run's `fusion` heuristic fused with the model's score, the weight chosen on
        validation Recall@50 (`tfzoo.evaluation.fusion.fused_reports`); None with
        `fusion=none`."""
        heuristic = self._fusion_heuristic(prepared.inputs.fusion)
        if heuristic is None:
            return None
        data = prepared.data
        queries, candidates = self.user_vectors(prepared)
        return fused_reports(
            queries,
            candidates,
            heuristic=heuristic,
            train_edges=data.train.edges,
            validation=data.validation,
            test=data.test,
            slices=self._slices(data),
            per_user=per_user,
        )

    @staticmethod
    def _fusion_heuristic(value: str | None) -> str | None:
        heuristic = None if value in (None, "none") else value
        check_fusion(heuristic)
        return heuristic

    def baselines(self, prepared: Prepared, split: str, *, per_user: bool = False) -> dict[str, dict]:
        data = prepared.data
        return heuristic_reports(
            data.held_out(self._held_out(split)),
            train_edges=data.train.edges,
            num_users=data.train.num_users,
            exclude_edges=[self._other(data, split)],
            slices=self._slices(data),
            per_user=per_user,
        )

    def export(
        self,
        run,
        export_base: str | Path,
        name: str,
        *,
        version: int | None = None,
        target_recall: float | None = None,
        fusion: Fusion | str | None = None,
        recall_latency: bool | None = None,
    ) -> Path:
        """Writes `<name>/<version>` (ScaNN index) and `<name>_brute_force/<version>` (exact
        index, no ScaNN ops needed), both over the run's whole graph (every friendship is
        known at serving time); returns the ScaNN one. With `target_recall`, the ScaNN index
        searches the fewest leaves that reach it; both serve the model's score fused with
        the heuristic the run chose on validation (`metrics.json`'s `fused`), unless
        `fusion` gives another `Fusion` or "none". With `recall_latency`, the ScaNN index's
        recall against latency at every number of leaves is measured and recorded."""
        if fusion is None:
            fusion = self.chosen_fusion(run.directory)
        elif fusion == "none":
            fusion = None
        elif not isinstance(fusion, Fusion):
            raise ValueError(f"`fusion` must be a Fusion, 'none' or None. Received: fusion={fusion!r}")
        graph = self.run_graph(run.config, run.directory)
        # One sampler (seed 0, as the report's vectors) for the indexed vectors and warm-up.
        sampler = SubgraphSampler(graph, fanouts=run.inputs.fanouts, seed=0)
        vectors = run.model.user_vectors(sampler)
        common = {"sampler": sampler, "vectors": vectors, "fusion": fusion}
        path = export_friend_retrieval(
            run.model,
            graph,
            export_base,
            name,
            version=version,
            index="scann",
            target_recall=target_recall,
            recall_latency=bool(recall_latency),
            **common,
        )
        export_friend_retrieval(
            run.model, graph, export_base, f"{name}_brute_force", version=int(path.name), index="brute_force", **common
        )
        return path

    @staticmethod
    def chosen_fusion(directory: Path) -> Fusion | None:
        """The fusion the run chose on validation (`metrics.json`'s `fused`); None where it
        chose none (or weight 0) or its metrics predate fusion."""
        path = Path(directory) / METRICS_FILE
        return Fusion.chosen(json.loads(path.read_text()).get("fused") if path.exists() else None)

    @staticmethod
    def _slices(data: FriendshipSplits) -> dict[str, np.ndarray]:
        return {"cold_start": data.cold_start_users} if len(data.cold_start_users) else {}

    @staticmethod
    def _held_out(split: str) -> str:
        if split not in ("validation", "test"):
            raise ValueError(
                f"Friend retrieval is evaluated on held-out friendships: `split` must be 'validation' or "
                f"'test'. Received: split={split!r}"
            )
        return split

    @staticmethod
    def _other(data: FriendshipSplits, split: str) -> np.ndarray:
        return data.test if split == "validation" else data.validation
