"""Custom Keras layers of the twin and the head, registered so saved models load with safe_mode."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="sigverify")
class L2Normalization(keras.layers.Layer):
    """Scale each row to unit L2 norm (the embedding lives on the unit sphere)."""

    def __init__(self, epsilon: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs):
        squared = ops.sum(ops.square(inputs), axis=-1, keepdims=True)
        return inputs * ops.rsqrt(ops.maximum(squared, self.epsilon))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="sigverify")
class L1Distance(keras.layers.Layer):
    """Element-wise absolute difference |a - b| of two embeddings (symmetric in a and b)."""

    def call(self, inputs):
        first, second = inputs
        return ops.abs(first - second)

    def compute_output_shape(self, input_shape):
        return input_shape[0]
