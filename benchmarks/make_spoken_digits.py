"""Render spoken digits ("zero" .. "nine") with espeak-ng into a speaker-disjoint WAV dataset.

Writes OUT/{train,test}/<digit>/<voice>_<take>.wav (16 kHz, mono, 16-bit) and OUT/manifest.csv.
Voices are espeak-ng English accents combined with voice variants; each utterance gets a random
pitch, speed and amplitude drawn from a seeded generator, so the dataset is reproducible. A
random ``--test-fraction`` of the voices is held out as the test split.

Needs the Debian packages espeak-ng and sox (``apt-get install -y espeak-ng sox``). Example:

    python benchmarks/make_spoken_digits.py --out ~/.cache/molssl/spoken_digits
"""
from __future__ import annotations

import argparse
import csv
import random
import shutil
import subprocess
from pathlib import Path

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")


def render(text: str, voice: str, pitch: int, speed: int, amplitude: int, sample_rate: int, path: Path) -> None:
    """espeak-ng -> sox: one utterance as a mono 16-bit WAV at ``sample_rate``."""
    speech = subprocess.run(
        ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-a", str(amplitude), "--stdout", text],
        check=True, capture_output=True,
    ).stdout
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["sox", "-t", "wav", "-", "-r", str(sample_rate), "-c", "1", "-b", "16", str(path)],
                   input=speech, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("~/.cache/molssl/spoken_digits"))
    parser.add_argument("--takes", type=int, default=2, help="utterances per voice and digit")
    parser.add_argument("--test-fraction", type=float, default=0.25, help="fraction of voices held out")
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed; run: apt-get install -y espeak-ng sox")
    if not 0.0 < args.test_fraction < 1.0:
        raise SystemExit("--test-fraction must be in (0, 1)")
    out = args.out.expanduser()
    rng = random.Random(args.seed)
    voices = [f"{accent}+{variant}" for accent in ACCENTS for variant in VARIANTS]
    test_voices = set(rng.sample(voices, round(args.test_fraction * len(voices))))
    rows = []
    for voice in voices:
        split = "test" if voice in test_voices else "train"
        for digit in DIGITS:
            for take in range(args.takes):
                pitch, speed, amplitude = rng.randint(20, 80), rng.randint(110, 210), rng.randint(60, 180)
                name = f"{voice.replace('+', '_')}_{take}.wav"
                path = out / split / digit / name
                render(digit, voice, pitch, speed, amplitude, args.sample_rate, path)
                rows.append({"split": split, "label": digit, "voice": voice, "take": take, "pitch": pitch,
                             "speed": speed, "amplitude": amplitude, "path": str(path.relative_to(out))})
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    n_test = sum(r["split"] == "test" for r in rows)
    print(f"wrote {len(rows)} clips ({len(rows) - n_test} train, {n_test} test; "
          f"{len(voices) - len(test_voices)} / {len(test_voices)} voices) to {out}")


if __name__ == "__main__":
    from molssl.cli.common import run_script

    run_script(main)
