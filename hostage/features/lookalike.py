"""Signs of the look-alikes of HO: a uniform fill without bone structure, contact with gas.

Everything dense in the soft tissue is not HO (DOMAIN.md, look-alikes). Two
signs that no stage of HO shows are measured here, for the classifier to flag
(:func:`hostage.classify.rules.score_focus`: an atypical focus is never
simply "ready"):

* a **uniform fill**: HO is bone in the making, never a uniform mass:
  amorphous mineral is patchy, immature bone a loose network, mature bone a
  cortex around trabeculae and fatty marrow. A dense focus whose inside is as
  uniform as the scan's noise is a pool of contrast (an opacified bladder, a
  bowel loop with oral contrast), a calcific collection or a tumour matrix;
* **contact with gas**: HO lies in muscle and fascia; dense material against
  gas is bowel content with oral contrast (or an infected collection).
"""

from __future__ import annotations

import math

import numpy as np

from ..config import FeatureConfig
from ._geometry import shell_outside
from ._registry import FeatureFamily, FeatureSpec
from ._roi import FocusROI

__all__ = ["FAMILY", "lookalike_features"]

#: The interquartile range of a Gaussian is this many standard deviations.
_IQR_SD = 1.349

#: Fewer interior voxels than this: the fill is not measured (NaN).
_MIN_INTERIOR_VOXELS = 20


def lookalike_features(roi: FocusROI, *, config: FeatureConfig) -> dict[str, float]:
    """Measure the uniformity of the focus's inside and its contact with gas.

    The *interior* is the focus deeper than the scan's edge width
    (:attr:`~hostage.segment.ReferenceTissues.edge_width_mm`, at least
    ``lookalike_min_depth_mm``): the blurred outline, where every focus shades
    into the muscle, is left out.

    * ``lookalike_fill_excess_hu`` = median interior HU − muscle HU.
    * ``lookalike_fill_spread`` = (interquartile range of the interior's HU) ÷
      (1.349 × the scan's noise SD): about 1 when the inside is uniform apart
      from the noise (a fluid pool), several times that for the specks,
      strands, trabeculae and marrow of HO. The quartiles, not the extremes:
      the last blurred voxels of the outline that reach the interior only
      move the tails. Both fill values are NaN with fewer than 20 interior
      voxels, an unmeasured noise, or a focus whose deepest point is less than
      ``lookalike_min_fill_depth_mm`` deep: a strip or plate thinner than
      twice that may be compact bone through and through, as uniform as a
      pool (two thin mature strips of our phantoms, 6.6-7 mm thick, were
      flagged as uniform fills without this limit).
    * ``lookalike_gas_contact`` = fraction of the voxels within
      ``lookalike_gas_shell_mm`` outside the focus outline whose HU is below
      ``lookalike_gas_max_hu`` (gas; fat stays near −100 HU).

    Parameters
    ----------
    roi : FocusROI
        The focus crop (with ``roi_margin_mm`` of surroundings).
    config : FeatureConfig
        ``lookalike_min_depth_mm``, ``lookalike_min_fill_depth_mm``,
        ``lookalike_gas_shell_mm``, ``lookalike_gas_max_hu``.

    Returns
    -------
    dict of str to float

    Examples
    --------
    A uniform 600 HU ball in muscle, noise 20 HU, next to a pocket of gas:

    >>> from hostage.features import roi_from_arrays
    >>> from hostage.config import FeatureConfig
    >>> from hostage.segment import ReferenceTissues
    >>> rng = np.random.default_rng(0)
    >>> z, y, x = np.ogrid[:30, :30, :40]
    >>> ball = (z - 15) ** 2 + (y - 15) ** 2 + (x - 15) ** 2 <= 10**2
    >>> hu = np.where(ball, 650.0, 50.0) + rng.normal(0, 20, (30, 30, 40))
    >>> hu[(x >= 20) & ~ball] = -950.0  # gas against one side of the ball
    >>> ref = ReferenceTissues(muscle_hu=50.0, fat_hu=-100.0, cortex_hu=1500.0,
    ...                        noise_hu=20.0, edge_width_mm=1.0)
    >>> roi = roi_from_arrays(hu.astype(np.float32), ball, spacing_zyx_mm=(1.0, 1.0, 1.0),
    ...                       config=FeatureConfig(), reference=ref)
    >>> v = lookalike_features(roi, config=FeatureConfig())
    >>> round(v["lookalike_fill_excess_hu"], -1), round(v["lookalike_fill_spread"], 1)
    (600.0, 1.0)
    >>> v["lookalike_gas_contact"] > 0.05
    True
    """
    ref = roi.reference
    mask = roi.mask
    edge = ref.edge_width_mm if math.isfinite(ref.edge_width_mm) else 0.0
    inner = mask & (roi.depth_mm >= max(edge, config.lookalike_min_depth_mm))
    excess = spread = math.nan
    deep_enough = float(roi.depth_mm.max(initial=0.0)) >= config.lookalike_min_fill_depth_mm
    if deep_enough and int(np.count_nonzero(inner)) >= _MIN_INTERIOR_VOXELS:
        p25, p50, p75 = np.percentile(roi.hu[inner], [25, 50, 75])
        excess = float(p50) - ref.muscle_hu
        if math.isfinite(ref.noise_hu) and ref.noise_hu > 0:
            spread = float(p75 - p25) / (_IQR_SD * ref.noise_hu)
    box, shell = shell_outside(
        mask, roi.spacing_zyx_mm, from_mm=0.0, to_mm=config.lookalike_gas_shell_mm
    )
    gas = (
        float(np.count_nonzero(roi.hu[box][shell] < config.lookalike_gas_max_hu)) / n
        if (n := int(np.count_nonzero(shell)))
        else math.nan
    )
    return {
        "lookalike_fill_excess_hu": excess,
        "lookalike_fill_spread": spread,
        "lookalike_gas_contact": gas,
    }


FAMILY = FeatureFamily(
    name="lookalike",
    compute=lookalike_features,
    features=(
        FeatureSpec(
            "lookalike_fill_excess_hu",
            "HU",
            "Median HU of the interior (deeper than the scan's edge width) minus muscle: how dense the fill is.",
        ),
        FeatureSpec(
            "lookalike_fill_spread",
            "1",
            "Interior interquartile range in units of the scan's noise (1.349 SD): ~1 for a uniform pool of "
            "contrast or fluid, several for the specks, network or trabeculae and marrow of HO.",
        ),
        FeatureSpec(
            "lookalike_gas_contact",
            "1",
            "Fraction of a thin shell just outside the outline that is gas: bowel content, not HO in muscle.",
        ),
    ),
)
