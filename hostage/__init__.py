"""hostage: stage heterotopic ossification (HO) on CT.

For every hyperdense focus of ossification in the soft tissue, hostage says
whether it is amorphous, immature or mature, shows why, and says whether the HO
is ready for surgical resection. It is a research measurement, not a medical
device.

Public API
----------
load(path) -> Volume
stage(path) -> StudyResult
batch(inputs, out=...) -> list of StudyResult
make_phantom(...) -> Phantom
"""

from __future__ import annotations

from ._version import __version__
from .batch import batch
from .config import Config, load_config
from .enums import Resection, Stage, Status
from .errors import (
    ConfigError,
    GeometryError,
    HostageError,
    InputError,
    MissingDependencyError,
)
from .io import load
from .io.volume import Volume
from .phantom import Phantom, make_phantom
from .pipeline import stage
from .result import FocusResult, StudyResult

__all__ = [
    "Config",
    "ConfigError",
    "FocusResult",
    "GeometryError",
    "HostageError",
    "InputError",
    "MissingDependencyError",
    "Phantom",
    "Resection",
    "Stage",
    "Status",
    "StudyResult",
    "Volume",
    "__version__",
    "batch",
    "load",
    "load_config",
    "make_phantom",
    "stage",
]
