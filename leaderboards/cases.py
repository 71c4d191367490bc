"""One scored case's volumes, found through the store's record of where they live.

The slice gallery and the case views of the disagreement explorer draw a case's image with its
reference and prediction. They open only the paths a run recorded in the store
(:attr:`leaderboards.data.LeaderboardData.artifacts`): the prediction from the run's
``predictions`` folder, the image and reference from its ``data`` root. The prediction is
untrusted input and goes through the same checks as scoring (:func:`evaluator.ingest.read_prediction`,
the task's label map); anything missing, changed or refused gives ``None``, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import SimpleITK as sitk

    from evaluator.datasets.base import DatasetAdapter
    from evaluator.workspace import Workspace
    from leaderboards.data import LeaderboardData

__all__ = ["CaseLoader", "CaseVolumes", "display_channel"]


@dataclass(frozen=True)
class CaseVolumes:
    """A case's image channel, reference and prediction label maps, array order ``(z, y, x)``.

    Attributes
    ----------
    image : numpy.ndarray
        The display channel (:func:`display_channel`), float.
    reference, prediction : numpy.ndarray
        Label maps (task label values), same shape as ``image``.
    spacing : tuple of float
        Voxel size per array axis, mm.
    reference_image : SimpleITK.Image
        The reference as read (its geometry: physical positions).
    """

    image: np.ndarray
    reference: np.ndarray
    prediction: np.ndarray
    spacing: tuple[float, ...]
    reference_image: sitk.Image


def display_channel(channels: tuple[str, ...]) -> str:
    """The channel a case is shown in: PET when there is one (lesions are bright), else the first.

    Examples
    --------
    >>> display_channel(("CT", "PET")), display_channel(("CT",))
    ('PET', 'CT')
    """
    return next((c for c in channels if c.upper() in ("PET", "PT")), channels[0])


@dataclass
class CaseLoader:
    """Loads cases of one board; opens each recorded data root once."""

    data: LeaderboardData
    workspace: Workspace
    _datasets: dict[Path, DatasetAdapter | None] = field(default_factory=dict)

    def _dataset(self, root: Path) -> DatasetAdapter | None:
        from evaluator.datasets.base import open_dataset
        from evaluator.errors import CCBenchError

        if root not in self._datasets:
            try:  # the run's data root, as recorded; gone or changed: nothing from it
                self._datasets[root] = open_dataset(
                    self.data.spec, workspace=self.workspace, data_root=root
                )
            except CCBenchError:
                self._datasets[root] = None
        return self._datasets[root]

    def load(self, entry: str, case_id: str) -> CaseVolumes | None:
        """The volumes of ``case_id`` as ``entry`` predicted it, or None (3D tasks only)."""
        import SimpleITK as sitk

        from evaluator.datasets.labels import label_array
        from evaluator.errors import CCBenchError
        from evaluator.evaluate import find_predictions
        from evaluator.ingest import read_prediction

        if self.data.spec.dims != 3:
            return None
        pred_dir = self.data.artifact(entry, "predictions")
        data_root = self.data.artifact(entry, "data")
        if pred_dir is None or data_root is None:
            return None
        dataset = self._dataset(data_root)
        if dataset is None:
            return None
        try:  # the entry's folder is untrusted and may have changed since it was scored
            pred_file = find_predictions(pred_dir, [case_id]).get(case_id)
        except CCBenchError:
            return None
        if not isinstance(pred_file, Path):
            return None
        labels = self.data.spec.labels
        try:  # through the same checks as scoring: a prediction is untrusted input
            case = dataset.case(case_id)
            ref_img = case.read_label()
            pred_img = read_prediction(
                pred_file, what=f"prediction {case_id}", expected_size=ref_img.GetSize()
            )
            prediction = label_array(pred_img, labels=labels, what="prediction")
            channel = case.read_channel(display_channel(self.data.spec.channels))
            image = sitk.GetArrayFromImage(channel).astype(np.float32)
            reference = label_array(ref_img, labels=labels, what=f"reference {case_id}")
        except CCBenchError:
            return None
        if not (image.shape == reference.shape == prediction.shape):
            return None
        spacing = tuple(float(s) for s in ref_img.GetSpacing()[::-1])
        return CaseVolumes(image, reference, prediction, spacing, ref_img)
