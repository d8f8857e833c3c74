"""Synthesises the multi-voice clean corpus the general model trains on.

  python -m experiments.voices.make_voices --voices_dir=~/.cache/mel_ae/voices

Needs espeak-ng and Festival with its voices (Debian: `apt-get install
espeak-ng festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
festvox-italp16k festvox-itapc16k festvox-ru festvox-suopuhe-lj
festvox-suopuhe-mv festvox-czech-dita festvox-czech-machac
festvox-czech-ph`); the Festival diphone voices are cut from real
recordings. Deterministic for a seed (same tools, same files). Nothing
here is shipped: the corpus is a cache the general model is trained from.

Layout (power mels as librosa makes them at 22.05 kHz, float32):
  train/VVNN_<voice>.npy                clean, TRAIN_UTTERANCES per voice
  val/{clean,noisy}/...                VAL_UTTERANCES pairs per held-out
                                       voice, noised_VVNN_<voice>.npy <->
                                       VVNN_<voice>.npy
  val_audio/{clean,noisy}/...          the same pairs as float WAV
Each voice is scaled so its loudest training frame is the embedded
corpus' peak (420) and gets a white recording floor at a random level
(FLOOR_DB_RANGE below the embedded corpus' floor). Validation noise: the
additive kinds of the embedded corpus at SNR U(0, 15) dB, babble made of
training voices. Never the embedded test voice (espeak-ng en-us, 160
words/min, pitch 50), nor the held-out set's (en-gb-x-rp+f3).
"""
import json
import os
import subprocess
import sys
import tempfile

from absl import app
from absl import flags
import numpy as np
import soundfile

from experiments import make_corpus
from mel_ae import audio
from mel_ae import mel_io
from mel_ae import noise

_OUT = flags.DEFINE_string('voices_dir', '~/.cache/mel_ae/voices', 'Corpus folder.')
_SEED = flags.DEFINE_integer('voices_seed', 0, 'Seed of sentences, levels, noise.')

SPEC = make_corpus.SPEC
TRAIN_UTTERANCES = 24
VAL_UTTERANCES = 10
FLOOR_DB_RANGE = (-30.0, 0.0)
NOISES = make_corpus.MAIN_NOISES

# (tag, engine, voice, language, sex); espeak voices as 'name:rate:pitch'.
TRAIN_VOICES = (
    ('us_f3', 'espeak', 'en-us+f3:165:60', 'en', 'f'),
    ('us_m7', 'espeak', 'en-us+m7:150:40', 'en', 'm'),
    ('nyc_f1', 'espeak', 'en-us-nyc+f1:170:70', 'en', 'f'),
    ('gb_f4', 'espeak', 'en-gb+f4:155:55', 'en', 'f'),
    ('lancs_m2', 'espeak', 'en-gb-x-gbclan+m2:145:35', 'en', 'm'),
    ('carib_m5', 'espeak', 'en-029+m5:160:45', 'en', 'm'),
    ('de_f1', 'espeak', 'de+f1:150:60', 'de', 'f'),
    ('de_m3', 'espeak', 'de+m3:140:35', 'de', 'm'),
    ('fr_f2', 'espeak', 'fr-fr+f2:165:65', 'fr', 'f'),
    ('fr_m4', 'espeak', 'fr-fr+m4:150:40', 'fr', 'm'),
    ('es_f5', 'espeak', 'es+f5:160:60', 'es', 'f'),
    ('es_m1', 'espeak', 'es-419+m1:155:45', 'es', 'm'),
    ('it_f3', 'espeak', 'it+f3:150:70', 'it', 'f'),
    ('pt_m2', 'espeak', 'pt-br+m2:155:40', 'pt', 'm'),
    ('nl_f4', 'espeak', 'nl+f4:150:55', 'nl', 'f'),
    ('pl_m5', 'espeak', 'pl+m5:140:30', 'pl', 'm'),
    ('sv_f1', 'espeak', 'sv+f1:155:65', 'sv', 'f'),
    ('hu_m6', 'espeak', 'hu+m6:150:50', 'hu', 'm'),
    ('kal', 'festival', 'kal_diphone', 'en', 'm'),
    ('lp', 'festival', 'lp_diphone', 'it', 'f'),
    ('pc', 'festival', 'pc_diphone', 'it', 'm'),
    ('fi_lj', 'festival', 'suo_fi_lj_diphone', 'fi', 'f'),
    ('fi_mv', 'festival', 'hy_fi_mv_diphone', 'fi', 'm'),
    ('cs_dita', 'festival', 'czech_dita', 'cs', 'f'),
    ('cs_machac', 'festival', 'czech_machac', 'cs', 'm'),
    ('ru_nsh', 'festival', 'msu_ru_nsh_clunits', 'ru', 'm'),
)
VAL_VOICES = (
    ('slt', 'festival', 'cmu_us_slt_arctic_hts', 'en', 'f'),
    ('ked', 'festival', 'ked_diphone', 'en', 'm'),
    ('cs_ph', 'festival', 'czech_ph', 'cs', 'm'),
    ('scot_m3', 'espeak', 'en-gb-scotland+m3:150:40', 'en', 'm'),
    ('de_f2', 'espeak', 'de+f2:160:70', 'de', 'f'),
)
# Text encodings of the Festival voices that do not read UTF-8.
_FESTIVAL_ENCODING = {'cs': 'iso-8859-2', 'fi': 'iso-8859-1',
                      'it': 'iso-8859-1'}
_NATIVE = {
    'de': ['Der alte Fischer repariert sein Boot am Hafen.',
           'Morgen fahren wir mit dem Zug nach Hamburg.',
           'Die Kinder spielen im Garten hinter dem Haus.',
           'Hast du den Brief schon gelesen?',
           'Im Winter ist der See oft zugefroren.',
           'Sie hat drei Tassen Kaffee getrunken.'],
    'fr': ['Le boulanger ouvre sa boutique avant le lever du soleil.',
           'Nous avons visité le musée la semaine dernière.',
           'Est-ce que tu as vu mon parapluie rouge?',
           'La rivière traverse le village en silence.',
           'Mes voisins partent en vacances demain matin.',
           'Il faut fermer la fenêtre, il fait froid.'],
    'es': ['El tren sale de la estación a las ocho.',
           'Mi hermana trabaja en un hospital grande.',
           '¿Has visto las montañas desde la ventana?',
           'Compramos pan y queso en el mercado.',
           'La lluvia no paró en toda la noche.',
           'Los niños cantan en el patio de la escuela.'],
    'it': ['Il pescatore ripara la sua barca nel porto.',
           'Domani andiamo al mercato con la nonna.',
           'La finestra della cucina è rimasta aperta.',
           'Hai già finito di leggere quel libro?',
           'In primavera il giardino è pieno di fiori.',
           'Mio fratello suona la chitarra ogni sera.'],
    'pt': ['O barco chegou ao porto antes da chuva.',
           'Minha tia mora numa casa perto do rio.',
           'Você já comeu o bolo de laranja?',
           'As crianças correm pela praia ao sol.',
           'Amanhã vamos visitar o museu da cidade.',
           'O médico chegou cedo ao hospital.'],
    'nl': ['De molen staat al eeuwen aan de rivier.',
           'Wij fietsen elke ochtend naar het station.',
           'Heb jij mijn blauwe sleutels gezien?',
           'Het regent al de hele dag in de stad.',
           'Mijn opa vertelt graag verhalen over zee.',
           'De bakker verkoopt vers brood en koekjes.'],
    'pl': ['Mój brat naprawia rower w garażu.',
           'Jutro pojedziemy pociągiem do Krakowa.',
           'Czy widziałeś mój czerwony parasol?',
           'Dzieci bawią się w ogrodzie za domem.',
           'Zimą jezioro często zamarza.',
           'Babcia piecze ciasto z jabłkami.'],
    'sv': ['Fiskaren lagar sin båt vid hamnen.',
           'I morgon åker vi tåg till Göteborg.',
           'Har du sett min gamla cykel?',
           'Barnen leker i trädgården bakom huset.',
           'På vintern fryser sjön ofta till.',
           'Hon drack tre koppar kaffe i morse.'],
    'hu': ['A halász a kikötőben javítja a csónakját.',
           'Holnap vonattal megyünk Szegedre.',
           'Láttad a piros esernyőmet?',
           'A gyerekek a kertben játszanak.',
           'Télen a tó gyakran befagy.',
           'A nagymama almás süteményt süt.'],
    'fi': ['Kalastaja korjaa venettään satamassa.',
           'Huomenna matkustamme junalla Tampereelle.',
           'Oletko nähnyt punaisen sateenvarjoni?',
           'Lapset leikkivät talon takana puutarhassa.',
           'Talvella järvi jäätyy usein.',
           'Isoäiti leipoo omenapiirakkaa.'],
    'cs': ['Rybář opravuje svůj člun v přístavu.',
           'Zítra pojedeme vlakem do Brna.',
           'Viděl jsi můj červený deštník?',
           'Děti si hrají na zahradě za domem.',
           'V zimě jezero často zamrzne.',
           'Babička peče jablečný koláč.'],
    'ru': ['Рыбак чинит свою лодку в порту.',
           'Завтра мы поедем на поезде в Москву.',
           'Ты видел мой красный зонтик?',
           'Дети играют в саду за домом.',
           'Зимой озеро часто замерзает.',
           'Бабушка печёт яблочный пирог.'],
}


def _espeak(text: str, voice: str, path: str) -> None:
  name, rate, pitch = voice.split(':')
  subprocess.run(['espeak-ng', '-v', name, '-s', rate, '-p', pitch, '-w',
                  path, text], check=True)


def _festival(text: str, voice: str, language: str, path: str) -> None:
  with tempfile.NamedTemporaryFile('w', suffix='.scm') as select:
    select.write(f'(voice_{voice})\n')
    select.flush()
    subprocess.run(['text2wave', '-eval', select.name, '-o', path],
                   input=text.encode(_FESTIVAL_ENCODING.get(language, 'utf-8')),
                   check=True, capture_output=True)


def synthesise(text: str, engine: str, voice: str, language: str) -> np.ndarray:
  """Speech at SPEC.sr with make_corpus.LEAD_S of silence in front."""
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'utt.wav')
    if engine == 'espeak':
      _espeak(text, voice, path)
    else:
      _festival(text, voice, language, path)
    wave = audio.load_audio(path, SPEC.sr).astype(np.float64)
  return np.pad(wave, (int(make_corpus.LEAD_S * SPEC.sr), 0))


def texts(language: str, count: int, rng: np.random.Generator):
  """The language's own sentences first, then English ones (accented)."""
  native = list(_NATIVE.get(language, ()))
  english = make_corpus.sentences(rng)
  return [native[i] if i < len(native) else next(english)
          for i in range(count)]


def scaled_speech(voice, count: int, rng: np.random.Generator):
  """`count` utterances of one voice, scaled together so the loudest mel
  value is the corpus peak, no floor added; (text, wave) pairs and the
  power gain applied."""
  _, engine, name, language, _ = voice
  waves = [(t, synthesise(t, engine, name, language))
           for t in texts(language, count, rng)]
  peak = max(audio.audio_to_mel(w, SPEC).max() for _, w in waves)
  gain = make_corpus.PEAK / peak
  return [(t, np.sqrt(gain) * w) for t, w in waves], gain


def voice_waves(voice, count: int, seed: int, index: int):
  """`count` utterances of one voice, scaled to the corpus peak, each with
  its own white floor; (text, wave) pairs."""
  rng = np.random.default_rng([seed, index])
  speech, gain = scaled_speech(voice, count, rng)
  out = []
  for text, wave in speech:
    floor_gain = 10 ** (rng.uniform(*FLOOR_DB_RANGE) / 10)
    sigma = make_corpus.floor_sigma(gain / floor_gain)
    out.append((text, wave
                + sigma * np.sqrt(gain) * rng.standard_normal(len(wave))))
  return out


def save(root: str, rel: str, data: np.ndarray, manifest: dict, entry):
  """Writes a mel (.npy) or float WAV under `root`; records `entry` for it."""
  path = os.path.join(root, rel)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  if rel.endswith('.wav'):
    soundfile.write(path, data.astype(np.float32), SPEC.sr, subtype='FLOAT')
  else:
    mel_io.save_mel(path, data, overwrite=True)
  manifest[rel] = entry


def build(root: str, seed: int) -> dict:
  """Writes every file; returns the manifest {relative path: entry}."""
  manifest = {}
  babble = []
  for i, voice in enumerate(TRAIN_VOICES):
    tag, engine, name, language, sex = voice
    for n, (text, wave) in enumerate(
        voice_waves(voice, TRAIN_UTTERANCES, seed, i)):
      entry = {'text': text, 'engine': engine, 'voice': name,
               'language': language, 'sex': sex}
      save(root, f'train/{i:02d}{n:02d}_{tag}.npy', audio.audio_to_mel(wave, SPEC),
            manifest, entry)
      if n == 0:
        babble.append(wave)
  for i, voice in enumerate(VAL_VOICES, start=len(TRAIN_VOICES)):
    tag, engine, name, language, sex = voice
    for n, (text, clean) in enumerate(
        voice_waves(voice, VAL_UTTERANCES, seed, i)):
      rng = np.random.default_rng([seed, i, n, 1])
      kind, snr = NOISES[n % len(NOISES)], round(rng.uniform(0, 15), 1)
      noisy = clean + noise.scale_to_snr(
          clean, make_corpus.make_noise(kind, len(clean), rng, babble), snr)
      entry = {'text': text, 'engine': engine, 'voice': name,
               'language': language, 'sex': sex, 'noise': kind,
               'snr_db': snr}
      stem = f'{i:02d}{n:02d}_{tag}'
      for folder, wave in (('clean', clean), ('noisy', noisy)):
        name_ = stem if folder == 'clean' else f'noised_{stem}'
        save(root, f'val/{folder}/{name_}.npy',
              audio.audio_to_mel(wave, SPEC), manifest, entry)
        save(root, f'val_audio/{folder}/{name_}.wav', wave, manifest, entry)
  return manifest


def main(argv):
  del argv
  root = os.path.expanduser(_OUT.value)
  if os.path.exists(os.path.join(root, 'manifest.json')):
    sys.exit(f'{root}: holds a corpus already (remove it to rebuild)')
  manifest = build(root, _SEED.value)
  with open(os.path.join(root, 'manifest.json'), 'w') as f:
    json.dump({'params': {'seed': _SEED.value, 'peak': make_corpus.PEAK},
               'files': manifest}, f, indent=1, sort_keys=True, ensure_ascii=False)
    f.write('\n')
  print(f'{root}: {len(TRAIN_VOICES)} training voices x {TRAIN_UTTERANCES}, '
        f'{len(VAL_VOICES)} validation voices x {VAL_UTTERANCES} pairs')


if __name__ == '__main__':
  app.run(main)
