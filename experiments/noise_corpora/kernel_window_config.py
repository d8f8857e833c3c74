"""configs/denoise.py with the 'kernel' output's window spelt out, so that
a sweep can set it (model.kernel_window; its default is the form's)."""
from configs import denoise


def get_config():
  config = denoise.get_config()
  config.model.kernel_window = (3, 7)
  return config
