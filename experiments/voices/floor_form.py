"""A U-Net output form for the general model that also sees each band's
quiet level over its whole input, registered with mel_ae's output forms
(mel_ae/output_forms.py) when imported.

The U-Net sees 26 frames either side, where babble of voices like the
speaker's may look like speech; spectral subtraction, which beats the
general model on babble, estimates the noise over the whole file. Here
the network is fed, beside the log-power input, each band's
`floor_quantile` over the input's frames (a crop in training, a chunk in
inference), and its output is a residual on the input, like 'residual'.
"""
import dataclasses

import jax.numpy as jnp

from mel_ae import output_forms


@output_forms.register('unet', 'floor_residual')
@dataclasses.dataclass(frozen=True)
class FloorResidual(output_forms.OutputForm):
  """'residual', with each band's quiet level as a second input channel."""
  floor_quantile: float = 0.2

  def sees(self, inputs):
    floor = jnp.quantile(inputs, self.floor_quantile, axis=2, keepdims=True)
    return jnp.concatenate(
        [inputs, jnp.broadcast_to(floor, inputs.shape)], axis=-1)

  def __call__(self, seen, out):
    return seen[..., 0:1] + out

  @classmethod
  def checks(cls, config, m):
    return [(0 < m.floor_quantile < 1,
             'model.floor_quantile must lie in (0, 1)')]
