"""Make examples/mini_corpus: 6 synthetic speakers, 2 acted "emotions", 2 sentences each.

The voices are espeak-ng's (variants of its English voice), so the corpus carries no one's
recordings and no licence beyond emovox's own. "happy" is spoken high, fast and loud, "sad" low,
slow and soft: a toy contrast, enough for `emovox train`, `cv` and `evaluate` to run end to
end on something that ships with the code. It says nothing about real emotional speech.

    python examples/make_mini_corpus.py      # needs espeak-ng and sox on the PATH
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "mini_corpus"
SPEAKERS = [("spk1", "m1", "male"), ("spk2", "f1", "female"), ("spk3", "m3", "male"),
            ("spk4", "f3", "female"), ("spk5", "m5", "male"), ("spk6", "f4", "female")]
SENTENCES = ["The train leaves at seven tomorrow morning.",
             "I put the letters on the kitchen table."]
#: espeak-ng pitch (0-99), speed (words per minute), amplitude (0-200) per emotion.
STYLES = {"happy": (78, 200, 120), "sad": (22, 120, 60)}


def main() -> None:
    """Write the FLAC files and manifest.csv."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            sys.exit(f"make_mini_corpus: needs {tool} on the PATH")
    for old in OUT.glob("*.flac"):
        old.unlink()
    rows = ["path,label,speaker,gender"]
    with tempfile.TemporaryDirectory() as tmp:
        for speaker, variant, gender in SPEAKERS:
            for label, (pitch, speed, amplitude) in STYLES.items():
                for k, text in enumerate(SENTENCES, start=1):
                    name = f"{speaker}_{label}_{k}.flac"
                    wav = Path(tmp) / "x.wav"
                    subprocess.run(["espeak-ng", "-v", f"en+{variant}", "-p", str(pitch),
                                    "-s", str(speed), "-a", str(amplitude), "-w", str(wav),
                                    text], check=True)
                    subprocess.run(["sox", str(wav), "-r", "16000", "-c", "1", "-b", "16",
                                    str(OUT / name)], check=True)
                    rows.append(f"{name},{label},{speaker},{gender}")
    (OUT / "manifest.csv").write_text("\n".join(rows) + "\n")
    print(f"wrote {len(rows) - 1} recordings to {OUT}")


if __name__ == "__main__":
    main()
