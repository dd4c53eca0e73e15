"""GRec: a ranker whose export serves each (flow, use case) task through its extracted experts."""

from __future__ import annotations

from pathlib import Path

from tfzoo.export.grec import export_grec
from tfzoo.tasks.ranking import RankingTask


class GRecTask(RankingTask):
    """`RankingTask` for `tfzoo.models.GRec`: trained and reported as any ranker; exported
    with task-level routing's experts extracted (`tfzoo.export.grec`)."""

    def export(self, run, export_base: str | Path, name: str, *, version: int | None = None, **options) -> Path:
        self.check_export_options(options)
        return export_grec(run.model, run.inputs.feature_spec, export_base, name, version)
