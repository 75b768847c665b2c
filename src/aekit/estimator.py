"""What every aekit scikit-learn estimator shares: image input tags and the fitted check.

`Autoencoder`, the anomaly `Detector` and `FewLabelClassifier` each take images (N, H, W) or
(N, C, H, W) of non-negative pixels; saying so in their estimator tags makes scikit-learn's
checks feed them image-shaped data. No torch here.
"""

from __future__ import annotations


class ImageEstimatorMixin:
    """Put first in the bases, before scikit-learn's mixins and BaseEstimator."""

    # The learned attribute whose presence means the estimator is fitted.
    fitted_attribute: str = ""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True  # (N, H, W) and (N, C, H, W) images
        tags.input_tags.positive_only = True  # pixels
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, self.fitted_attribute)
