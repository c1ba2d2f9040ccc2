"""Refit the stage weights from labelled foci, keeping the transparent rule form.

The evidence ramps (``<term>_from``/``<term>_to``) stay as configured; only
the weights ``weight_<term>_<stage>`` and baselines ``bias_<stage>`` are refit,
by multinomial logistic regression with an L2 penalty on the weights
(``scipy.optimize.minimize``, L-BFGS-B, analytic gradient). The weights of a
sign of maturity (every term whose ``ordinal`` is true: all of them today) are
constrained to be ordinal, amorphous 0 <= immature <= mature, so that a refit
can never learn that, say, a cortical rim speaks for an amorphous focus, and
the reasons keep their meaning. The accuracy is
estimated by stratified k-fold cross-validation before the final fit on all
foci. Save the refit config with :func:`hostage.config.render_toml`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from ..config import ClassifyConfig
from ..enums import Stage
from .rules import STAGES, TERMS, evidence_matrix, stage_probabilities

__all__ = ["FitResult", "fit"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class FitResult:
    """The outcome of :func:`fit`.

    Attributes
    ----------
    config : ClassifyConfig
        The base config with refit weights and baselines.
    cv_accuracy : float
        Cross-validated accuracy (fraction of foci staged correctly), 0-1.
    confusion : (3, 3) ndarray of int
        Cross-validated confusion matrix; rows are the true stages and columns
        the predicted ones, both in :class:`~hostage.enums.Stage` order.
    num_foci : int
    folds : int
    """

    config: ClassifyConfig
    cv_accuracy: float
    confusion: np.ndarray
    num_foci: int
    folds: int

    def __str__(self) -> str:
        names = [s.value for s in STAGES]
        w = max(len(n) for n in names)
        lines = [
            f"cross-validated accuracy {self.cv_accuracy:.3f} "
            f"({self.folds}-fold, {self.num_foci} foci)",
            "confusion (rows true, columns predicted):",
            " " * (w + 2) + "  ".join(f"{n:>{w}}" for n in names),
        ]
        for n, row in zip(names, self.confusion, strict=True):
            lines.append(f"{n:>{w}}  " + "  ".join(f"{int(v):>{w}}" for v in row))
        return "\n".join(lines)


def _rows(features_table: Any) -> list[dict[str, float]]:
    """Accept rows (mappings), a column mapping, FocusFeatures or a pandas DataFrame."""
    if hasattr(features_table, "to_dict") and hasattr(features_table, "columns"):
        features_table = features_table.to_dict("records")
    elif isinstance(features_table, Mapping):
        cols = {k: list(v) for k, v in features_table.items()}
        n = {len(v) for v in cols.values()}
        if len(n) > 1:
            raise ValueError(f"features_table columns have different lengths: {sorted(n)}")
        features_table = [{k: v[i] for k, v in cols.items()} for i in range(n.pop() if n else 0)]
    rows = []
    for r in features_table:
        values = getattr(r, "values", r)
        if callable(values):  # a plain Mapping's .values() method, not FocusFeatures.values
            values = r
        row = {}
        for k, v in values.items():
            key = k[len("feature_") :] if k.startswith("feature_") else k
            try:
                row[key] = float(v)
            except (TypeError, ValueError):
                continue  # non-numeric columns of foci.csv (stage, reasons, ...)
        rows.append(row)
    return rows


def _ordinal_mask() -> np.ndarray:
    return np.array([t.ordinal for t in TERMS], dtype=bool)


def _unpack(theta: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Parameters -> weights (3, K) and biases (3,).

    Ordinal terms (signs of maturity) are parametrised as steps ``d1, d2 >= 0``:
    ``w = (0, d1, d1 + d2)`` for (amorphous, immature, mature), so more of the
    sign never favours a less mature stage. Other terms have three free weights.
    """
    ordinal = _ordinal_mask()
    w = np.zeros((3, k))
    pos = 0
    for j in range(k):
        if ordinal[j]:
            d1, d2 = theta[pos : pos + 2]
            w[:, j] = (0.0, d1, d1 + d2)
            pos += 2
        else:
            w[:, j] = theta[pos : pos + 3]
            pos += 3
    b = np.concatenate([[0.0], theta[pos : pos + 2]])  # amorphous baseline fixed at 0
    return w, b


def _num_params(k: int) -> int:
    ordinal = _ordinal_mask()
    return int(2 * ordinal.sum() + 3 * (k - ordinal.sum()) + 2)


def _grad_theta(gw: np.ndarray, gb: np.ndarray) -> np.ndarray:
    """Chain rule from weight/bias gradients to the parameters of :func:`_unpack`."""
    ordinal = _ordinal_mask()
    out = []
    for j in range(gw.shape[1]):
        if ordinal[j]:
            out += [gw[1, j] + gw[2, j], gw[2, j]]
        else:
            out += list(gw[:, j])
    return np.concatenate([np.asarray(out, dtype=float), gb[1:]])


def _train(e: np.ndarray, y: np.ndarray, *, l2: float, theta0: np.ndarray) -> np.ndarray:
    n, k = e.shape
    onehot = np.eye(3)[y]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = _unpack(theta, k)
        z = e @ w.T + b
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        p = np.exp(logp)
        nll = -float((onehot * logp).sum()) / n + 0.5 * l2 * float((w**2).sum())
        d = (p - onehot) / n
        gw = d.T @ e + l2 * w
        gb = d.sum(axis=0)
        return nll, _grad_theta(gw, gb)

    ordinal = _ordinal_mask()
    bounds: list[tuple[float | None, float | None]] = []
    for j in range(k):
        bounds += [(0.0, None)] * 2 if ordinal[j] else [(None, None)] * 3
    bounds += [(None, None)] * 2
    res = optimize.minimize(loss, theta0, jac=True, method="L-BFGS-B", bounds=bounds)
    return np.asarray(res.x, dtype=float)


def fit(
    features_table: Any,
    labels: Sequence[Stage | str],
    *,
    rng: int | np.random.Generator | None = None,
    folds: int = 5,
    l2: float = 0.01,
    base: ClassifyConfig | None = None,
    verbose: bool = True,
) -> FitResult:
    """Refit the stage weights from labelled foci and report cross-validated accuracy.

    Parameters
    ----------
    features_table : sequence of mapping, mapping of sequences, sequence of FocusFeatures or DataFrame
        Feature values per focus. Keys may carry the ``feature_`` prefix of
        foci.csv; non-numeric columns are ignored.
    labels : sequence of Stage or str
        The true stage of each focus.
    rng : int, numpy.random.Generator or None
        Seed for the fold assignment.
    folds : int
        Number of cross-validation folds (>= 2).
    l2 : float
        L2 penalty on the weights (per focus), >= 0.
    base : ClassifyConfig, optional
        Config whose ramps and other settings are kept; defaults to ``ClassifyConfig()``.
    verbose : bool
        Print the cross-validated accuracy and confusion matrix.

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        If the lengths differ, a label is not a stage, `folds` < 2, or fewer
        foci than folds are given.

    Examples
    --------
    >>> rows = [{"rim_completeness": r, "density_p90_rel_cortex": d} for r, d in
    ...         [(0.0, 0.1), (0.1, 0.2), (0.5, 0.5), (0.55, 0.55), (0.95, 0.9), (0.9, 0.95)] * 3]
    >>> labels = ["amorphous", "amorphous", "immature", "immature", "mature", "mature"] * 3
    >>> result = fit(rows, labels, rng=0, folds=3, verbose=False)
    >>> result.cv_accuracy
    1.0
    """
    base = ClassifyConfig() if base is None else base
    rows = _rows(features_table)
    if len(rows) != len(labels):
        raise ValueError(
            f"features_table has {len(rows)} foci but labels has {len(labels)}; give one label per focus"
        )
    bad = [
        (i, lab) for i, lab in enumerate(labels) if lab not in {*Stage, *(s.value for s in Stage)}
    ]
    if bad:
        i, lab = bad[0]
        raise ValueError(
            f"labels[{i}] = {lab!r} is not a stage; use one of {', '.join(s.value for s in Stage)}"
        )
    if folds < 2:
        raise ValueError(f"folds must be >= 2; got {folds}")
    if len(rows) < folds:
        raise ValueError(f"need at least folds={folds} labelled foci; got {len(rows)}")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0; got {l2}")
    y = np.array([STAGES.index(Stage(lab)) for lab in labels], dtype=int)
    e = evidence_matrix(rows, config=base)
    k = len(TERMS)
    theta0 = np.zeros(_num_params(k))

    gen = np.random.default_rng(rng)
    fold = np.empty(len(y), dtype=int)
    for c in range(3):  # stratified: each stage spread evenly over the folds
        idx = np.flatnonzero(y == c)
        fold[gen.permutation(idx)] = np.arange(idx.size) % folds
    confusion = np.zeros((3, 3), dtype=int)
    for f in range(folds):
        test = fold == f
        if not test.any():
            continue
        theta = _train(e[~test], y[~test], l2=l2, theta0=theta0)
        pred = stage_probabilities(e[test], *_unpack(theta, k)).argmax(axis=1)
        np.add.at(confusion, (y[test], pred), 1)
    cv_accuracy = float(np.trace(confusion) / confusion.sum())

    w, b = _unpack(_train(e, y, l2=l2, theta0=theta0), k)
    b = b - b[0]
    updates: dict[str, Any] = {}
    for si, s in enumerate(STAGES):
        updates[f"bias_{s.value}"] = round(float(b[si]), 4)
        for ti, t in enumerate(TERMS):
            updates[t.weight_key(s)] = round(float(w[si, ti]), 4)
    result = FitResult(
        config=dataclasses.replace(base, **updates),
        cv_accuracy=cv_accuracy,
        confusion=confusion,
        num_foci=len(y),
        folds=folds,
    )
    logger.info("fit: cross-validated accuracy %.3f on %d foci", cv_accuracy, len(y))
    if verbose:
        print(result)
    return result
