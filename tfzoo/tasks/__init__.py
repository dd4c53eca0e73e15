"""Each model kind end to end: its data, building, report, baselines and export
(`tfzoo.training.task.ModelTask`), looked up by model name with
`tfzoo.training.registry.task_for`.

Names load with the module that defines them.
"""

from tfzoo.lazy_names import lazy_attributes

_EXPORTS = {
    "RankingInputs": "ranking",
    "RankingTask": "ranking",
    "GRecTask": "grec",
    "ChannelInputs": "supermoe",
    "MaskedChannelPretrainingTask": "supermoe",
    "SuperMoETask": "supermoe",
    "FriendGraphInputs": "ssmtl",
    "FriendRetrievalTask": "ssmtl",
}
_SUBMODULES = ("grec", "ranking", "ssmtl", "supermoe")

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, _SUBMODULES)
