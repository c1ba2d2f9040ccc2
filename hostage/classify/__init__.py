"""Turn features into stage scores with reasons, and foci into a study verdict.

* :func:`classify` stages one focus (:mod:`hostage.classify.rules`: evidence
  terms, a linear score per stage, a softmax, reasons citing measured values);
* :func:`check_stability` re-stages each focus under small perturbations
  (:mod:`hostage.classify.stability`);
* :func:`resection` gives the study verdict (:mod:`hostage.classify.resection`);
* :func:`fit` refits the weights from labelled foci (:mod:`hostage.classify.fit`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..config import ClassifyConfig
from .resection import resection
from .rules import TERMS, EvidenceTerm, score_focus
from .types import FocusStage, ResectionVerdict

if TYPE_CHECKING:
    from ..features import FocusFeatures
    from .fit import FitResult, fit
    from .stability import check_stability

__all__ = [
    "TERMS",
    "EvidenceTerm",
    "FitResult",
    "FocusStage",
    "ResectionVerdict",
    "check_stability",
    "classify",
    "fit",
    "resection",
]


def classify(features: FocusFeatures, *, config: ClassifyConfig) -> FocusStage:
    """Stage one focus from its features.

    Parameters
    ----------
    features : FocusFeatures
        The measured features of the focus.
    config : ClassifyConfig
        Evidence ramps, weights and baselines (``[classify]`` table).

    Returns
    -------
    FocusStage
        The stage, a score per stage (summing to 1), the confidence and the
        reasons, each citing a measured value.

    Examples
    --------
    >>> from hostage.config import ClassifyConfig
    >>> from hostage.features import FocusFeatures
    >>> f = FocusFeatures(focus_id=1, values={
    ...     "rim_completeness": 0.95, "texture_connectivity_density_per_mm3": 0.8,
    ...     "rim_fat_fraction": 0.3, "margin_sharpness_ratio": 0.95,
    ...     "density_p90_rel_cortex": 0.95, "margin_irregularity": 0.05})
    >>> st = classify(f, config=ClassifyConfig())
    >>> st.stage.value, round(sum(st.scores.values()), 6)
    ('mature', 1.0)
    >>> "continuous cortical rim over 95 % of the surface" in st.reasons
    True
    """
    return score_focus(features.values, config=config)


# check_stability (scipy.ndimage, the feature code) and fit (scipy.optimize) are imported
# on first use, so that ``import hostage`` (which needs only the result types) stays light.
# ``fit`` is also the name of its module: import the function from the package
# (``from hostage.classify import fit``); ``import hostage.classify.fit`` done before that
# would bind the package's ``fit`` attribute to the module.
_LAZY: dict[str, str] = {"check_stability": ".stability", "fit": ".fit", "FitResult": ".fit"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # replaces the submodule the import bound to ``fit``
    return value
