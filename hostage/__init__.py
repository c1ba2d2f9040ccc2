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

``import hostage`` is light: the loader, the pipeline and the phantoms (numpy,
scipy, SimpleITK, pydicom) are imported on first use of the name that needs
them (``hostage.load``, ``hostage.stage``, ``hostage.make_phantom``, ...).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# hostage.batch is both a module and the function it defines. It is imported here, eagerly
# (it is light), so that the name is the function whatever is imported later: importing an
# already imported submodule does not rebind the package attribute.
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

if TYPE_CHECKING:
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

#: Public name -> the module that defines it, imported on first access.
_LAZY: dict[str, str] = {
    "load": ".io",
    "Volume": ".io.volume",
    "Phantom": ".phantom",
    "make_phantom": ".phantom",
    "stage": ".pipeline",
    "FocusResult": ".result",
    "StudyResult": ".result",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hostage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
