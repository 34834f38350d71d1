import numpy as np

from emovox.vad import EnergyVAD


def _voice(seconds, level_db, rng):
    t = np.arange(int(seconds * 16000)) / 16000
    phase = 2 * np.pi * np.cumsum(150 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / 16000
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None)  # 4 syllables a second
    x = syllables * sum(np.sin(k * phase) / k for k in range(1, 6))
    x = x / np.sqrt(np.mean(x**2)) * 10 ** (level_db / 20)
    return (x + 10 ** (-80 / 20) * rng.normal(size=t.size)).astype(np.float32)


def test_quiet_speech_is_speech_but_steady_noise_and_silence_are_not():
    rng = np.random.default_rng(0)
    vad = EnergyVAD()
    # A softly spoken, well recorded take (RAVDESS has sad takes peaking near -50 dBFS that
    # the old -55 dBFS floor called silence): speech.
    assert vad.has_speech(_voice(2.0, -63.0, rng), 16000)
    assert not EnergyVAD(floor_db=-55.0).has_speech(_voice(2.0, -63.0, rng), 16000)  # the old floor
    assert vad.has_speech(_voice(2.0, -20.0, rng), 16000)
    # Steady hiss at any level, and digital silence: not speech.
    assert not vad.has_speech((10 ** (-40 / 20) * rng.normal(size=32000)).astype(np.float32), 16000)
    assert not vad.has_speech((10 ** (-65 / 20) * rng.normal(size=32000)).astype(np.float32), 16000)
    assert not vad.has_speech(np.zeros(32000, np.float32), 16000)
