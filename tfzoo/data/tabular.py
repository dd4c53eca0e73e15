"""In-memory tabular data: feature columns, binary label columns and their masks."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from tfzoo.data.features import DatasetSpec


@dataclasses.dataclass
class TabularData:
    """Rows held as NumPy columns, with the spec that describes them.

    Attributes:
      features: raw feature columns keyed by feature name (see `tfzoo.data.features`).
      labels: binary label columns (float32 0/1) keyed by label name.
      label_masks: 1.0 where the label is observed, 0.0 where it is missing; a missing
        label contributes neither to the loss nor to the metrics. Defaults to all ones;
        a NaN label counts as missing whatever its mask says.
      spec: the dataset spec; fit it on the training split before building pipelines.
      source: where the rows came from, for messages.
      skipped_rows: rows dropped by a reader's `on_bad_row="skip"`.
    """

    features: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    spec: DatasetSpec
    label_masks: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    source: str = ""
    skipped_rows: int = 0

    def __post_init__(self):
        num_rows = self.spec.check_columns(self.features, source=self.source)
        missing = [name for name in self.spec.labels if name not in self.labels]
        if missing:
            raise KeyError(f"Missing label column(s) {missing} in {self.source or 'data'}.")
        for name, values in self.labels.items():
            if len(values) != num_rows:
                raise ValueError(f"Label {name!r} has {len(values)} rows; features have {num_rows}.")
            self.labels[name] = np.asarray(values, dtype=np.float32)
            mask = self.label_masks.get(name)
            mask = np.ones(num_rows, np.float32) if mask is None else np.asarray(mask, np.float32)
            if len(mask) != num_rows:
                raise ValueError(f"Mask of label {name!r} has {len(mask)} rows; features have {num_rows}.")
            # A NaN label is a missing one; a missing label is stored as 0 so that no NaN
            # can reach a loss, and its mask says it is absent.
            mask = np.where(np.isfinite(self.labels[name]), mask, 0.0).astype(np.float32)
            self.labels[name] = np.where(mask > 0, self.labels[name], 0.0).astype(np.float32)
            self.label_masks[name] = mask
        self._num_rows = num_rows

    def __len__(self) -> int:
        return self._num_rows

    def take(self, indices: np.ndarray) -> TabularData:
        """The rows at `indices` (a new object; columns are copied)."""
        indices = np.asarray(indices)
        return TabularData(
            features={k: v[indices] for k, v in self.features.items()},
            labels={k: v[indices] for k, v in self.labels.items()},
            label_masks={k: v[indices] for k, v in self.label_masks.items()},
            spec=self.spec,
            source=self.source,
        )

    def with_spec(self, spec: DatasetSpec) -> TabularData:
        return dataclasses.replace(self, spec=spec, labels=dict(self.labels), label_masks=dict(self.label_masks))

    def positive_rate(self) -> Mapping[str, float]:
        """Share of positives among observed labels, per label."""
        return {
            name: float((self.labels[name] * self.label_masks[name]).sum() / max(self.label_masks[name].sum(), 1.0))
            for name in self.spec.labels
        }
