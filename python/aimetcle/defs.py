"""Common definitions (AIMET: ``aimet_common.defs`` / ``aimet_torch.defs``)."""

from enum import Enum


class QuantScheme(Enum):
    """How encodings are computed from the observed values.

    ``post_training_tf``: min-max. ``post_training_tf_enhanced``: an SQNR
    search over a histogram, ignoring outliers. The range-learning and
    percentile schemes are named for compatibility with AIMET scripts; the
    library computes their initial encodings like TF / TF-enhanced and does
    not train ranges.
    """

    post_training_tf = "post_training_tf"
    post_training_tf_enhanced = "post_training_tf_enhanced"
    training_range_learning_with_tf_init = "training_range_learning_with_tf_init"
    training_range_learning_with_tf_enhanced_init = "training_range_learning_with_tf_enhanced_init"
    post_training_percentile = "post_training_percentile"

    @property
    def library_code(self):
        """The aimet_quant_scheme_t value: 1 = TF, 2 = TF-enhanced."""
        if self in (QuantScheme.post_training_tf, QuantScheme.training_range_learning_with_tf_init):
            return 1
        if self in (QuantScheme.post_training_tf_enhanced, QuantScheme.training_range_learning_with_tf_enhanced_init):
            return 2
        raise NotImplementedError(f"{self.name} is not supported: use post_training_tf or post_training_tf_enhanced")
