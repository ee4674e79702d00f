"""What the rest of the package knows about one model: ModelSpec. Each model module declares
the specs of its named networks (SPECS); models/__init__.py collects them into the registry."""
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

# (source, data set, top-1 error %, top-5 error %); None where the source gives no figure
Result = tuple[str, str, Optional[float], Optional[float]]


@dataclass(frozen=True)
class ModelSpec:
    name: str                   # the --model name
    towers: int                 # devices one replica spans (AlexNet's two GPUs)
    table: tuple                # the layer table build() walks, in the paper's order
    # build(images, config, devices, training=False) -> Net, whatever config.model says
    build: Callable
    paper_total: Optional[int]  # trainable parameters, the paper's (or derived where it has none)
    published: tuple[Result, ...] = ()
    # layer -> (neurons, parameters), all towers: the paper's per-layer figures, where it has them
    paper_layers: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    # the config ablations (use_lrn, pool, activation) that change a layer this model has
    switches: frozenset = frozenset()
    # the same variables evaluated densely over an image of any size (VGG's test-time net)
    build_dense: Optional[Callable] = None
