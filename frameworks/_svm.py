"""The lab's bonus (section 2.6): scikit-learn SVMs as a baseline for the MLP.

scikit-learn is imported when :func:`svm_baseline` runs, never at import.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from frameworks._data import Dataset
from frameworks._mnist import missing_sklearn


def svm_baseline(dataset: Dataset) -> list[dict[str, Any]]:
    """Fit the lab's four SVMs on ``dataset`` and measure their accuracy.

    The models are ``SVC(kernel="linear")``, ``SVC(kernel="rbf")``,
    ``LinearSVC()`` and ``SVC(kernel="poly", degree=2)``, all with
    scikit-learn's default hyperparameters as in the lab (``C=1``,
    ``gamma="scale"``); ``LinearSVC`` is given ``random_state=0`` so that its
    result does not depend on the global random state. Each is fitted on
    ``Xtrain`` against the class ids ``argmax(Ytrain)``.

    Returns:
      One row per model, in that order: ``{"model": name, "train_acc": float,
      "test_acc": float}``, accuracies as fractions in [0, 1].

    Raises:
      KitError: scikit-learn is not installed.
    """
    ytrain, ytest = dataset.Ytrain.argmax(axis=1), dataset.Ytest.argmax(axis=1)
    rows = []
    for name, model in _models().items():
        model.fit(dataset.Xtrain, ytrain)
        rows.append(
            {
                "model": name,
                "train_acc": _accuracy(model, dataset.Xtrain, ytrain),
                "test_acc": _accuracy(model, dataset.Xtest, ytest),
            }
        )
    return rows


def _models() -> dict[str, Any]:
    """The lab's SVMs by display name, unfitted."""
    try:
        from sklearn.svm import SVC, LinearSVC
    except ImportError:
        raise missing_sklearn("the SVM baseline") from None
    return {
        "SVC(kernel='linear')": SVC(kernel="linear"),
        "SVC(kernel='rbf')": SVC(kernel="rbf"),
        "LinearSVC()": LinearSVC(random_state=0),
        "SVC(kernel='poly', degree=2)": SVC(kernel="poly", degree=2),
    }


def _accuracy(model: Any, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of the rows of ``X`` whose predicted class is ``y``."""
    return float(np.mean(model.predict(X) == y))
