"""The noise fit on every corpus of the family, as a markdown table.

  python -m experiments.noise_corpora.fit_table
  python -m experiments.noise_corpora.fit_table --clean_voice=slt

Corpora are made in memory as the command makes them (80 clean files, 20
noisy; no test pairs), fitted with the default noise settings
(mel_ae/settings.py); from the embedded voice or from --clean_voice.
"""
from absl import app
from absl import flags

from experiments.noise_corpora import corpora
from mel_ae import noise_model
from mel_ae import settings

_VOICE = flags.DEFINE_enum(
    'clean_voice', None, sorted(corpora.VOICES), 'A voice of '
    'experiments/voices as the speech (default: the embedded one).')


def row(recipe: corpora.Recipe, train) -> str:
  """One corpus: truth (kind, log-gain std, floor) | fit (the same)."""
  files, manifest = corpora.make(recipe, train[:-20], train[-20:], ())
  as_read = lambda split: [m.astype('float32') for m in files[split]]
  model = noise_model.fit(as_read('train'), as_read('noisy'),
                          settings.fill('noise', None), corpora.SPEC, seed=0)
  truth = manifest['truth']
  floor = lambda db: '-' if db is None else f'{db:.1f}'
  return (f'| {recipe.name} | {truth["kind"]} | {truth["log_gain_std"]:.2f} | '
          f'{floor(truth["floor_db"])} | {model.hypothesis} | '
          f'{model.log_gain_std:.2f} | '
          f'{floor(model.floor_file_mean_db if model.additive else None)} | '
          f'{model.rival} {model.margin:+.2f} (res. {model.resolution:.2f}) |')


def main(argv):
  del argv
  train, _ = corpora.speech(_VOICE.value)
  print('| corpus | true kind | log-gain std | floor (dB) | fitted kind | '
        'log-gain std | floor (dB) | rival, margin (dB) |')
  print('|---|---|---:|---:|---|---:|---:|---|')
  for recipe in corpora.family(_VOICE.value):
    print(row(recipe, train), flush=True)


if __name__ == '__main__':
  app.run(main)
