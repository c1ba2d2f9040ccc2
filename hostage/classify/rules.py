r"""Transparent stage scores: a few evidence terms, a linear score per stage, a softmax.

Each *evidence term* is a clipped-linear function of **one** measured feature,
scaled so that 0 means "the imaging sign is absent" and 1 means "the sign is
fully present" (DOMAIN.md; seed review 000: a mature focus has a continuous
cortical outline, organised trabecular bone with fatty marrow and sharp
margins; amorphous mineral is cloudy, punctate and patchy):

.. math::

    e_k = \operatorname{clip}\left(\frac{x_k - \mathrm{from}_k}{\mathrm{to}_k - \mathrm{from}_k}, 0, 1\right)

with ``from``/``to`` set in ``[classify]`` (``rim_from``, ``rim_to``, ...). A
feature that is not defined for the focus (NaN, e.g. no rim on a focus too small
to have one), or that its family flags as unreliable at this voxel size
(``texture_reliable = 0`` for the trabecular term), is *not measurable*: it
gets the ramp midpoint :math:`e_k = 1/2`, "no evidence either way", rather
than 0, which would read as "the sign is absent".

The score of stage :math:`s` is a weighted sum plus a baseline,
:math:`z_s = b_s + \sum_k w_{s,k} e_k` (``weight_<term>_<stage>``,
``bias_<stage>``), and the stage probabilities are the softmax
:math:`p_s = e^{z_s} / \sum_t e^{z_t}`. This is a multinomial logistic
regression on the evidence terms, so :func:`hostage.classify.fit` can refit the
weights from labelled foci while the reasons stay readable.

The reasons list every term as a sentence that cites the measured value, the
terms that favour the chosen stage over the runner-up first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..config import ClassifyConfig
from ..enums import Stage
from ..errors import ConfigError
from .types import FocusStage

__all__ = [
    "TERMS",
    "EvidenceTerm",
    "evidence",
    "evidence_matrix",
    "score_focus",
    "stage_probabilities",
    "term_bounds",
    "weight_matrix",
]

STAGES: tuple[Stage, ...] = tuple(Stage)


def _pct(v: float) -> str:
    return f"{100 * v:.0f} %"


def _rim(v: float, e: float) -> str:
    if e >= 0.67:
        return f"continuous cortical rim over {_pct(v)} of the surface"
    if e > 0.0:
        return f"partial, incomplete cortical rim over {_pct(v)} of the surface"
    return f"no cortical rim (a dense shell over only {_pct(v)} of the surface)"


def _trabecular(v: float, e: float) -> str:
    if e >= 0.67:
        return f"well-defined trabecular network inside (connectivity density {v:.2f} /mm³)"
    if e > 0.0:
        return f"initial trabecular formation inside (connectivity density {v:.2f} /mm³)"
    return f"no trabecular network inside (connectivity density {v:.2f} /mm³)"


def _marrow(v: float, e: float) -> str:
    if e >= 0.67:
        return f"fatty marrow inside ({_pct(v)} of the interior at fat density)"
    if e > 0.0:
        return f"a little fat inside ({_pct(v)} of the interior at fat density)"
    return f"no fatty marrow inside ({_pct(v)} of the interior at fat density)"


def _margin(v: float, e: float) -> str:
    if e >= 0.67:
        return f"sharp, well-defined margin ({v:.2f} × the sharpness of this scan's native cortex edge)"
    if e > 0.0:
        return f"poorly defined margin ({v:.2f} × the sharpness of this scan's native cortex edge)"
    return f"ill-defined margin fading into the muscle ({v:.2f} × the sharpness of this scan's native cortex edge)"


def _density(v: float, e: float) -> str:
    where = f"90th percentile at {_pct(v)} of the way from muscle to this scan's native cortex"
    if e >= 0.67:
        return f"dense, cortical-level mineral ({where})"
    if e > 0.0:
        return f"intermediate mineral density ({where})"
    return f"faint, low mineral density ({where})"


def _mineral(v: float, e: float) -> str:
    # three even bands: the share changes smoothly between the stages, with no "absent"
    where = f"{_pct(v)} of the focus at mineral density"
    if e >= 0.67:
        return f"solidly mineralised matrix ({where})"
    if e >= 0.33:
        return f"partly mineralised matrix ({where})"
    return f"low, patchy mineral ({where})"


def _outline(v: float, e: float) -> str:
    if e >= 0.67:
        return f"compact, regular outline (irregularity {v:.2f})"
    if e > 0.0:
        return f"somewhat lobulated outline (irregularity {v:.2f})"
    return f"cloudy, irregular outline (irregularity {v:.2f})"


def _faint_rim(v: float, e: float) -> str:
    if e >= 0.67:
        return f"a shell denser than the core over {_pct(v)} of the surface (faint or cortical)"
    if e > 0.0:
        return f"a partial, faint rim over {_pct(v)} of the surface"
    return f"no rim at all, not even a faint one ({_pct(v)} of the surface)"


def _zonal(v: float, e: float) -> str:
    if e >= 0.67:
        return f"peripheral (zonal) mineralisation, periphery/centre ratio {v:.2f}"
    if e > 0.0:
        return f"slightly peripheral mineralisation, periphery/centre ratio {v:.2f}"
    return f"no peripheral (zonal) mineralisation, periphery/centre ratio {v:.2f}"


def _specks(v: float, e: float) -> str:
    if e >= 0.67:
        return f"mineral in few separate pieces, not punctate ({v:.1f} bone-density specks per cm³)"
    if e > 0.0:
        return f"some scattered mineral specks ({v:.1f} bone-density specks per cm³)"
    return f"punctate: many separate mineral specks ({v:.1f} bone-density specks per cm³)"


def _network(v: float, e: float) -> str:
    if v <= 0.0:
        return "no mineral at bone density inside, so no connected network"
    if e >= 0.67:
        return f"the mineral forms one connected structure ({_pct(v)} of it in the largest piece)"
    if e > 0.0:
        return f"the mineral is partly connected ({_pct(v)} of it in the largest piece)"
    return (
        f"the mineral is scattered, not a connected network ({_pct(v)} of it in the largest piece)"
    )


def _halo(v: float, e: float) -> str:
    where = f"{_pct(v)} of its density still present 1-3 mm beyond its outline"
    if e >= 0.67:
        return f"clean outline, no mineral haze around it ({where})"
    if e > 0.0:
        return f"a little mineral haze around the outline ({where})"
    return f"fades into the muscle: a mineral haze around it ({where})"


@dataclass(frozen=True, slots=True, kw_only=True)
class EvidenceTerm:
    """One evidence term of the stage score.

    Attributes
    ----------
    name : str
        Short name; the config keys are ``<name>_from<unit>``, ``<name>_to<unit>``,
        ``weight_<name>_<stage>``.
    feature : str
        The feature it reads (a name from :data:`hostage.features.FAMILIES`).
    unit_suffix : str
        Unit suffix of the ``from``/``to`` keys (``""``, ``"_hu"``, ``"_per_mm3"``, ``"_per_cm3"``).
    sign : str
        The imaging sign, for documentation.
    describe : callable
        ``describe(value, evidence) -> str``: the reason sentence.
    reliable_flag : str or None
        A boolean feature; when it is 0 the term is not measurable on this scan.
    ordinal : bool
        True for a sign of maturity: :func:`hostage.classify.fit` keeps its
        weights ordered amorphous (0) <= immature <= mature.
    """

    name: str
    feature: str
    unit_suffix: str
    sign: str
    describe: Callable[[float, float], str]
    reliable_flag: str | None = None
    ordinal: bool = True

    @property
    def from_key(self) -> str:
        """Config key of the value where the evidence is 0."""
        return f"{self.name}_from{self.unit_suffix}"

    @property
    def to_key(self) -> str:
        """Config key of the value where the evidence is 1."""
        return f"{self.name}_to{self.unit_suffix}"

    def weight_key(self, stage: Stage) -> str:
        """Config key of this term's weight in `stage`'s score."""
        return f"weight_{self.name}_{stage.value}"


#: The evidence terms, in the order of the weight matrix columns.
TERMS: tuple[EvidenceTerm, ...] = (
    EvidenceTerm(
        name="rim",
        feature="rim_completeness",
        unit_suffix="",
        sign="continuous cortical outline",
        describe=_rim,
    ),
    EvidenceTerm(
        name="trabecular",
        feature="texture_connectivity_density_per_mm3",
        unit_suffix="_per_mm3",
        sign="organised cancellous bone (trabecular network)",
        describe=_trabecular,
        reliable_flag="texture_reliable",
    ),
    EvidenceTerm(
        name="marrow",
        feature="rim_fat_fraction",
        unit_suffix="",
        sign="fatty marrow between the trabeculae",
        describe=_marrow,
    ),
    EvidenceTerm(
        name="margin",
        feature="margin_sharpness_ratio",
        unit_suffix="",
        sign="sharp margins (relative to the scanner's own edge response)",
        describe=_margin,
    ),
    EvidenceTerm(
        name="density",
        feature="density_p90_rel_cortex",
        unit_suffix="",
        sign="mineral density approaching native cortex",
        describe=_density,
    ),
    EvidenceTerm(
        name="mineral",
        feature="density_mineral_fraction",
        unit_suffix="",
        sign="a mineralised matrix rather than low, patchy mineral",
        describe=_mineral,
    ),
    EvidenceTerm(
        name="outline",
        feature="margin_irregularity",
        unit_suffix="",
        sign="a compact outline rather than a cloud of specks",
        describe=_outline,
    ),
    EvidenceTerm(
        name="faint_rim",
        feature="rim_faint_completeness",
        unit_suffix="",
        sign="a partial, faint rim (peripheral mineralisation beginning)",
        describe=_faint_rim,
    ),
    EvidenceTerm(
        name="zonal",
        feature="zonal_periphery_center_ratio",
        unit_suffix="",
        sign="zonal mineralisation from the periphery inwards",
        describe=_zonal,
    ),
    EvidenceTerm(
        name="specks",
        feature="texture_speck_density_per_cm3",
        unit_suffix="_per_cm3",
        sign="mineral gathered in few pieces rather than punctate specks (a falling ramp)",
        describe=_specks,
    ),
    EvidenceTerm(
        name="network",
        feature="texture_network_fraction",
        unit_suffix="",
        sign="a connected mineral network (initial trabecular formation, cortex)",
        describe=_network,
    ),
    EvidenceTerm(
        name="halo",
        feature="margin_halo_fraction",
        unit_suffix="",
        sign="an outline that does not fade into the muscle (a falling ramp)",
        describe=_halo,
    ),
)


def term_bounds(config: ClassifyConfig) -> list[tuple[float, float]]:
    """Return the ``(from, to)`` pair of every term.

    Raises
    ------
    ConfigError
        If a term's ``from`` equals its ``to`` (the ramp would be a step of zero width).
    """
    bounds = []
    for t in TERMS:
        lo, hi = float(getattr(config, t.from_key)), float(getattr(config, t.to_key))
        if lo == hi:
            raise ConfigError(
                f"[classify] {t.from_key} and {t.to_key} are both {lo!r}; "
                f"set {t.to_key} different from {t.from_key} (it may be lower for a falling ramp)"
            )
        bounds.append((lo, hi))
    return bounds


def weight_matrix(config: ClassifyConfig) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``W`` (3, K) and biases ``b`` (3,) in :class:`~hostage.enums.Stage` order."""
    w = np.array([[getattr(config, t.weight_key(s)) for t in TERMS] for s in STAGES], dtype=float)
    b = np.array([getattr(config, f"bias_{s.value}") for s in STAGES], dtype=float)
    return w, b


def evidence(values: Mapping[str, float], *, config: ClassifyConfig) -> dict[str, float]:
    """Evidence of every term for one focus (NaN where not measurable).

    Parameters
    ----------
    values : mapping of str to float
        Feature values of one focus.
    config : ClassifyConfig

    Returns
    -------
    dict of str to float
        Term name -> evidence in [0, 1], or NaN when not measurable.

    Examples
    --------
    >>> from hostage.config import ClassifyConfig
    >>> cfg = ClassifyConfig(rim_from=0.25, rim_to=0.75)
    >>> evidence({"rim_completeness": 0.5}, config=cfg)["rim"]
    0.5
    """
    out = {}
    for t, (lo, hi) in zip(TERMS, term_bounds(config), strict=True):
        x = float(values.get(t.feature, math.nan))
        if t.reliable_flag is not None and float(values.get(t.reliable_flag, 1.0)) < 0.5:
            x = math.nan
        out[t.name] = math.nan if not math.isfinite(x) else min(1.0, max(0.0, (x - lo) / (hi - lo)))
    return out


def evidence_matrix(rows: Sequence[Mapping[str, float]], *, config: ClassifyConfig) -> np.ndarray:
    """Evidence of many foci as an (N, K) array; unmeasurable terms get the midpoint 0.5."""
    e = np.array([[evidence(r, config=config)[t.name] for t in TERMS] for r in rows], dtype=float)
    return np.nan_to_num(e.reshape(len(rows), len(TERMS)), nan=0.5)


def stage_probabilities(e: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Softmax of ``b + W e``: (..., K) evidence -> (..., 3) probabilities summing to 1."""
    z = e @ w.T + b
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=-1, keepdims=True)


def score_focus(values: Mapping[str, float], *, config: ClassifyConfig) -> FocusStage:
    """Stage one focus from its feature values (see the module docstring).

    Parameters
    ----------
    values : mapping of str to float
        Feature values of one focus (names as in :data:`hostage.features.FAMILIES`).
    config : ClassifyConfig

    Returns
    -------
    FocusStage
        Stage, scores summing to 1, confidence (the top score), reasons citing
        the measured values, and flags (atypical, uncertain, abstained).
    """
    ev = evidence(values, config=config)
    w, b = weight_matrix(config)
    e = np.array([0.5 if math.isnan(ev[t.name]) else ev[t.name] for t in TERMS])
    p = stage_probabilities(e, w, b)
    order = np.argsort(-p, kind="stable")
    top, runner = int(order[0]), int(order[1])
    stage = STAGES[top]
    scores = {s: float(p[i]) for i, s in enumerate(STAGES)}
    # Order terms by how much they favour the chosen stage over the runner-up,
    # measured from the ramp's midpoint (a term at 0 speaks *for* immaturity).
    missing = [t for t in TERMS if math.isnan(ev[t.name])]
    measured = [(i, t) for i, t in enumerate(TERMS) if not math.isnan(ev[t.name])]
    support = {t.name: (w[top, i] - w[runner, i]) * (ev[t.name] - 0.5) for i, t in measured}
    measured.sort(key=lambda it: -support[it[1].name])
    reasons = [t.describe(float(values[t.feature]), ev[t.name]) for _, t in measured]
    for t in missing:
        if t.reliable_flag is not None and float(values.get(t.reliable_flag, 1.0)) < 0.5:
            reasons.append(
                f"{t.sign} not assessed: the voxels of this scan are too large for it "
                f"({t.reliable_flag} = 0)"
            )
        else:
            reasons.append(f"{t.sign} not measurable on this focus ({t.feature} undefined)")

    pattern, why = atypical_pattern(values, config=config)
    atypical = pattern is not None
    if why:
        reasons.insert(0, why)
    signs, compact = _central_first_signs(values, config=config)
    if signs and compact and not atypical:
        reasons.append(
            "denser centre only within the scanner's blur (beyond it, periphery/centre ratio "
            f"{float(values['zonal_deep_periphery_center_ratio']):.2f} > "
            f"{config.atypical_max_deep_ratio:.2f}): compact bone, not central-first mineralisation"
        )
    reasons.extend(_context_reasons(values, atypical=atypical))
    abstained = len(missing) * 2 > len(TERMS)
    confidence = float(p[top])
    if float(values.get("metal_streak_zone", 0.0)) >= 0.5:
        confidence *= config.metal_confidence_factor
        dist = float(values.get("metal_distance_mm", math.nan))
        reasons.append(
            f"near metal ({dist:.0f} mm): implant streaks may bias these measures, "
            f"confidence × {config.metal_confidence_factor:.2f}"
        )
    uncertain = abstained or confidence < config.min_confidence
    if abstained:
        reasons.insert(
            0,
            f"abstains: only {len(TERMS) - len(missing)} of {len(TERMS)} signs could be "
            "measured, so the stage is a guess",
        )
    elif uncertain:
        reasons.insert(
            0,
            f"uncertain: top score {confidence:.2f} is below min_confidence "
            f"{config.min_confidence:.2f} (runner-up {STAGES[runner].value} {p[runner]:.2f})",
        )
    return FocusStage(
        stage=stage,
        scores=scores,
        confidence=confidence,
        reasons=tuple(reasons),
        atypical=atypical,
        atypical_pattern=pattern or "",
        uncertain=uncertain,
        abstained=abstained,
    )


#: The atypical patterns, as the study verdict names them (``FocusStage.atypical_pattern``).
CENTRAL_FIRST = "central-first mineralisation (not the peripheral pattern of HO)"
UNIFORM_FILL = (
    "uniform fill without bone structure (a contrast-filled bladder or bowel loop, a calcific "
    "collection or a tumour matrix, not HO)"
)
GAS_CONTACT = "contact with gas (bowel content or an infected collection, not HO in muscle)"


def atypical_pattern(
    values: Mapping[str, float], *, config: ClassifyConfig
) -> tuple[str | None, str]:
    """Return the atypical pattern a focus shows (or None) and the reason citing its values.

    In order of precedence:

    * central-first mineralisation: ``zonal_central_first``, the focus dense
      (``density_p90_rel_cortex`` ≥ ``atypical_min_density``) and no cortex
      around it (``rim_completeness_near`` < ``atypical_max_rim``) or an
      apparent rim over a denser core (``rim_core_contrast_hu`` ≤
      ``atypical_max_rim_core_contrast_hu``), unless beyond the scanner's
      blurred skin the centre is no denser than the periphery
      (``zonal_deep_periphery_center_ratio`` > ``atypical_max_deep_ratio``:
      compact bone, its outer millimetre lowered by the blur);
    * contact with gas: ``lookalike_gas_contact`` ≥ ``atypical_min_gas_contact``;
    * a uniform fill: ``lookalike_fill_excess_hu`` ≥
      ``atypical_uniform_min_excess_hu`` and ``lookalike_fill_spread`` ≤
      ``atypical_uniform_max_spread``.

    A feature that is missing or NaN never makes a focus atypical.

    Examples
    --------
    >>> from hostage.config import ClassifyConfig
    >>> cfg = ClassifyConfig()
    >>> atypical_pattern({"lookalike_fill_excess_hu": 600.0, "lookalike_fill_spread": 1.1},
    ...                  config=cfg)[0] == UNIFORM_FILL
    True
    >>> atypical_pattern({"lookalike_fill_excess_hu": 600.0, "lookalike_fill_spread": 6.0},
    ...                  config=cfg)
    (None, '')
    """

    def val(name: str, default: float = math.nan) -> float:
        return float(values.get(name, default))

    signs, compact = _central_first_signs(values, config=config)
    if signs and not compact:
        return CENTRAL_FIRST, (
            "atypical central-first mineralisation (dense centre, periphery/centre density ratio "
            f"{val('zonal_periphery_center_ratio'):.2f}): HO matures from the periphery inwards; a dense centre is the "
            "pattern of parosteal osteosarcoma, so this focus is never simply 'ready'"
        )
    gas = val("lookalike_gas_contact")
    if gas >= config.atypical_min_gas_contact:
        return GAS_CONTACT, (
            f"atypical: touches gas over {100 * gas:.0f} % of a thin shell around it: bowel content "
            "(oral contrast) or an infected collection, not HO in muscle, so this focus is never simply 'ready'"
        )
    excess, spread = val("lookalike_fill_excess_hu"), val("lookalike_fill_spread")
    if (
        excess >= config.atypical_uniform_min_excess_hu
        and spread <= config.atypical_uniform_max_spread
    ):
        return UNIFORM_FILL, (
            f"atypical uniform fill: {excess:.0f} HU above muscle inside with no structure (spread "
            f"{spread:.1f} × the scan's noise), where HO holds specks, a network or trabeculae and "
            "marrow: a pool of contrast (bladder, bowel), a calcific collection or a tumour matrix, so "
            "this focus is never simply 'ready'"
        )
    return None, ""


def _central_first_signs(
    values: Mapping[str, float], *, config: ClassifyConfig
) -> tuple[bool, bool]:
    """Return whether the signs of central-first hold, and whether the deep ratio says compact bone.

    See :func:`atypical_pattern`; a missing or NaN deep ratio never says compact bone.
    """

    def val(name: str, default: float = math.nan) -> float:
        return float(values.get(name, default))

    signs = (
        val("zonal_central_first", 0.0) >= 0.5
        and val("density_p90_rel_cortex", math.inf) >= config.atypical_min_density
        and (
            not val("rim_completeness_near", val("rim_completeness", 0.0))
            >= config.atypical_max_rim
            or val("rim_core_contrast_hu", math.inf) <= config.atypical_max_rim_core_contrast_hu
        )
    )
    # a centre denser only within the blurred skin is compact bone, not central-first
    compact = val("zonal_deep_periphery_center_ratio") > config.atypical_max_deep_ratio
    return signs, compact


def _context_reasons(values: Mapping[str, float], *, atypical: bool) -> list[str]:
    """Facts reported for context that do not enter the score (zonal pattern, relation to bone)."""
    out = []
    attached = float(values.get("bone_attached", math.nan))
    dist = float(values.get("bone_distance_mm", math.nan))
    if math.isfinite(attached) and attached >= 0.5:
        out.append("attached to the native bone")
    elif math.isfinite(dist):
        out.append(f"separated from the native bone by {dist:.1f} mm")
    return out
