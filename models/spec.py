"""The feature spec bundled with a model: which columns it reads, in which order, and what they mean.

Written at training time from the feature registry, read at serving time without the registry,
so an old model keeps explaining itself even after the registry changes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from models.currency import DEFAULT_CURRENCY

PEER_PREFIX = "peer__"


@dataclass
class FeatureSpec:
    feature_names: list[str]
    groups: dict[str, str]
    units: dict[str, str]
    monotone: dict[str, int]
    band_high: float
    band_medium: float
    miss_threshold: float = 1.0
    max_drivers: int = 5
    meta: dict = field(default_factory=dict)
    version: int = 1
    # feature -> "higher" / "lower": the side a manager reads as good (registry `better`); models
    # trained before it was bundled have none, and their drivers are phrased as before
    better: dict[str, str] = field(default_factory=dict)
    # ISO 4217 code of the training data's amounts (REPRADAR_CURRENCY at `train`): the model's texts
    # write amounts with it. Models trained before it was bundled wrote "$", and still do.
    currency: str = DEFAULT_CURRENCY

    def group_of(self, name: str) -> str:
        return self.groups.get(name, "other")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        data = json.loads(text)
        return cls(**data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> FeatureSpec:
        return cls.from_json(Path(path).read_text())


def base_feature(name: str) -> str:
    """`peer__win_rate` -> `win_rate`; other names unchanged."""
    return name[len(PEER_PREFIX) :] if name.startswith(PEER_PREFIX) else name
