"""Audio + text fusion, measured where text can help and where it cannot (issue #20, item 3).

Two measurements, each fold written when it finishes:

**Lexical** (``--part lexical``; ``results/text_fusion/lexical/fold_K.json``): a corpus built
for the purpose, where half of the recordings carry the emotion only in their words and half
only in their voice.
- Words: espeak-ng voices (12: en+m1..m7, en+f1..f5, default pitch and rate, so a flat,
  identical prosody for every emotion) read emotionally worded sentences (:data:`SENTENCES`,
  written for this benchmark: 20 per class, first person, everyday register; none from a
  corpus and none from ``data/text_prototypes.toml``).
- Voice: RAVDESS recordings of the same 6 classes (angry, disgust, fearful, happy, neutral,
  sad; strong intensity and every neutral), whose two sentences are the same in every emotion.
Folds: voices, actors *and sentences* are dealt to ``--folds`` groups (4): fold K tests on the
group-K espeak voices reading the group-K sentences and the group-K actors, and trains on the
rest, so no test voice, actor or sentence is seen in training. The recipe (``--recipe``,
default ``whisper_logreg``) is trained once per fold with ``text.fusion = "embedding"``
(``--fusion``); its acoustic part alone is the audio-only model (the same model: fusion
changes no acoustic weight), and both its late fusion and its joint head are scored. The
transcripts are the stated ones (the sentence read; RAVDESS's statement), or speech
recognition with ``--source asr``. Per fold: UA of audio alone, text alone, fused, each also on
the two halves, and the learned weight.

**RAVDESS** and **EmoDB** (``--part ravdess`` / ``emodb``; ``results/text_fusion/<corpus>``):
each corpus's own speaker-independent protocol (6 folds of 4 actors; leave one speaker out),
the same recipe and fusion, with the sentences as transcripts, through ``emovox cv`` (fold
files beside each other), fused UA against audio alone fold by fold. The text cannot help
here; the check is that it does not hurt.

``--table`` writes the README block between the ``text-fusion`` markers from the committed
results. Needs espeak-ng and sox (lexical part) and the ``text`` extra (MiniLM; ASR).

Usage: ``python benchmarks/text_fusion.py --part lexical --data ../shared/data [--folds-run 1]
[--cache DIR]``; ``--part ravdess --folds-run 1,2``; ``--table``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from emovox.config import load_recipe  # noqa: E402
from emovox.corpora import load_corpus  # noqa: E402
from emovox.dataset import FeatureBank  # noqa: E402
from emovox.evaluate import classification_scores  # noqa: E402
from emovox.experiment import assess_utterances, run_cv  # noqa: E402
from emovox.features import build_frontend  # noqa: E402
from emovox.files import provenance, write_between, write_text  # noqa: E402
from emovox.fusion import fused_answer, utterance_texts  # noqa: E402
from emovox.train import fit  # noqa: E402
from emovox.types import Utterance  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "text_fusion"
README = REPO / "README.md"
START, END = "<!-- text-fusion:start -->", "<!-- text-fusion:end -->"
VOICES = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
CLASSES = ("angry", "disgust", "fearful", "happy", "neutral", "sad")

#: Emotionally worded sentences, 20 per class (written for this benchmark).
SENTENCES: dict[str, tuple[str, ...]] = {
    "angry": (
        "I cannot believe you broke my phone again, I am livid.",
        "Get out of my room right now and slam the door behind you.",
        "You lied to my face and I am absolutely furious about it.",
        "That referee ruined the whole game and it makes my blood boil.",
        "Do not ever speak to my sister like that again.",
        "I am sick and tired of cleaning up after your mess.",
        "They cancelled my flight for the third time and I want to scream.",
        "How dare you read my private messages without asking.",
        "I am so mad that I could punch a hole in the wall.",
        "Stop interrupting me every single time I open my mouth.",
        "You wrecked my car and you did not even say sorry.",
        "This company stole my money and I am going to make them pay.",
        "I told you a hundred times, and you still ignored me.",
        "Shut up and listen for once in your life.",
        "I am outraged that they fired her for no reason.",
        "Keep your hands off my things or there will be trouble.",
        "My neighbour blasted music all night and I am fuming.",
        "You are a selfish liar and I will never forgive this.",
        "I am boiling with rage after that insulting phone call.",
        "Who gave you the right to throw away my letters?",
    ),
    "disgust": (
        "That sandwich smells like rotten eggs, it makes me want to vomit.",
        "There is mould growing all over the bread, how revolting.",
        "I found a hair in my soup and now I feel sick.",
        "The toilet on the train was filthy and disgusting.",
        "He chews with his mouth open and it is utterly gross.",
        "The milk has gone sour and the whole fridge stinks.",
        "Ugh, there are maggots crawling in the rubbish bin.",
        "Their kitchen was so greasy and dirty that I could not eat.",
        "The smell of that sewer makes my stomach turn.",
        "I stepped in something slimy and it was repulsive.",
        "What he did to those animals is sickening and vile.",
        "The sheets in that hotel were stained and nasty.",
        "Eating raw slugs on television is nauseating to watch.",
        "The fish market stench clung to my clothes all day, yuck.",
        "Someone spat on the pavement right in front of me, gross.",
        "The leftovers turned into a putrid green sludge.",
        "His corrupt lies make me feel dirty just listening.",
        "A cockroach ran across my plate and I lost my appetite.",
        "The bathroom sink was clogged with disgusting grime.",
        "That cheese smells like old sweaty socks, I am repelled.",
    ),
    "fearful": (
        "I heard footsteps behind me in the dark alley and I am terrified.",
        "Please do not leave me alone in this creepy house tonight.",
        "The plane is shaking so badly, I think we are going to crash.",
        "Someone is trying to open my front door, I am so scared.",
        "I am afraid the test results will show something terrible.",
        "The dog is growling at me and I am frozen with fear.",
        "What if the bridge collapses while we are crossing it?",
        "I am panicking, I cannot find my child anywhere.",
        "There is a strange man watching our house every night.",
        "My heart is pounding, I think somebody is in the basement.",
        "I am dreading the surgery tomorrow morning.",
        "The storm is getting worse and I am frightened the roof will fall.",
        "I am too scared to look down from this high ledge.",
        "Help me, something is moving under my bed.",
        "I am terrified of losing my job and my home.",
        "The car brakes are not working and we are speeding downhill.",
        "I keep having nightmares that someone is chasing me.",
        "I am worried sick that the fire will reach our street.",
        "Hide quickly, I think they are coming back for us.",
        "I am afraid to walk home alone after midnight.",
    ),
    "happy": (
        "I got the job, this is the best day of my life!",
        "We are going to have a baby and I am overjoyed.",
        "My best friend surprised me with a party and I loved it.",
        "I passed all my exams and I feel wonderful.",
        "The sun is shining and I am so delighted to be here with you.",
        "We won the championship, I am thrilled beyond words!",
        "I am so glad you came home safely, what a relief and a joy.",
        "This is the most delicious cake, thank you so much.",
        "I am excited to start our holiday at the beach tomorrow.",
        "My daughter took her first steps today and I am beaming.",
        "Hooray, the house is finally ours!",
        "I laughed so hard at the show, it was fantastic fun.",
        "I feel cheerful and full of energy this morning.",
        "They said yes to my proposal and I am on cloud nine.",
        "What a lovely surprise, I am so happy to see you.",
        "Our team finished the project and everyone is celebrating.",
        "I won the lottery, I cannot stop smiling!",
        "The concert was amazing and I had a blast.",
        "I am grateful and content with everything in my life.",
        "My grandmother is healthy again and I am jumping for joy.",
    ),
    "neutral": (
        "The meeting has been moved to room four on Tuesday.",
        "Please put the receipts in the second drawer.",
        "The bus number twelve stops at the corner every fifteen minutes.",
        "I need to buy rice, onions and a bottle of oil.",
        "The report is forty pages long and has six chapters.",
        "We usually have lunch at half past twelve.",
        "The library opens at nine and closes at five.",
        "Turn left after the bakery and the post office is on the right.",
        "The printer on the third floor uses the large paper tray.",
        "My brother lives in a flat near the station.",
        "The form asks for your address and date of birth.",
        "Water boils at one hundred degrees at sea level.",
        "The shop sells notebooks, pens and envelopes.",
        "I will send the file by email this afternoon.",
        "The train to the airport takes about thirty minutes.",
        "The garden is behind the house, next to the garage.",
        "Our office has eight desks and two meeting rooms.",
        "The recipe needs two eggs and a cup of flour.",
        "The next appointment is available on the fourteenth.",
        "The street was repaved last year.",
    ),
    "sad": (
        "My dog died this morning and I cannot stop crying.",
        "I miss my mother so much since she passed away.",
        "Nobody came to my birthday and I feel so lonely.",
        "She left me after ten years and my heart is broken.",
        "I lost my job today and I feel hopeless.",
        "Everything reminds me of him and it hurts so much.",
        "I am so sad that we will never see each other again.",
        "The doctor said there is nothing more they can do.",
        "I failed again and I feel like giving up.",
        "My best friend moved away and the house feels empty.",
        "I have been feeling miserable and down for weeks.",
        "We had to say goodbye to grandpa at the funeral.",
        "I feel so alone, no one understands me.",
        "The photos of our old life make me weep.",
        "I am heartbroken that our little shop has closed for good.",
        "It is so depressing to wake up to another grey empty day.",
        "My son does not call me anymore and I feel forgotten.",
        "I sobbed all night after reading her last letter.",
        "Our garden burned down and all the memories are gone.",
        "I regret everything and I am filled with sorrow.",
    ),
}
SEED = 0


def plan(folds: int) -> list[tuple[str, str, int, int]]:
    """Every espeak-ng recording: ``(voice, label, sentence index, group)``.

    Voice ``v`` is in group ``v % folds + 1`` and reads exactly the sentences of its group
    (index ``i`` in group ``i % folds + 1``), so a fold's voices and sentences are both unseen.
    """
    return [(voice, label, i, v % folds + 1) for v, voice in enumerate(VOICES)
            for label in CLASSES for i in range(len(SENTENCES[label]))
            if i % folds == v % folds]


def make_corpus(work: Path, folds: int) -> list[Utterance]:
    """The espeak-ng half: each voice group reads its own sentence group (made once, kept)."""
    manifest = work / "manifest.csv"
    if not manifest.exists():
        for tool in ("espeak-ng", "sox"):
            if shutil.which(tool) is None:
                raise SystemExit(f"text_fusion.py: needs {tool} on the PATH")
        work.mkdir(parents=True, exist_ok=True)
        rows = ["path,label,speaker,transcript,group"]
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "x.wav"
            for voice, label, i, group in plan(folds):
                sentence = SENTENCES[label][i]
                name = f"{voice}_{label}_{i:02d}.flac"
                subprocess.run(["espeak-ng", "-v", f"en+{voice}", "-w", str(raw), sentence],
                               check=True)
                subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16",
                                str(work / name)], check=True)
                quoted = '"' + sentence.replace('"', '""') + '"'
                rows.append(f"{name},{label},{voice},{quoted},{group}")
        write_text(manifest, "\n".join(rows) + "\n")
    utts = []
    groups = {}
    import csv

    with open(manifest, newline="") as handle:
        for row in csv.DictReader(handle):
            groups[row["path"]] = int(row["group"])
    for u in load_corpus("manifest", manifest):
        name = Path(u.path).name
        utts.append(Utterance(u.id, u.path, "espeak", u.speaker, u.label, u.gender,
                              extra={**u.extra, "group": groups[name], "half": "words"}))
    return utts


def ravdess_half(data: Path, folds: int) -> list[Utterance]:
    """RAVDESS recordings of :data:`CLASSES` (strong intensity; every neutral), actor groups."""
    out = []
    for u in load_corpus("ravdess", data / "ravdess"):
        if u.label not in CLASSES:
            continue
        intensity = Path(u.path).stem.split("-")[3]
        if u.label != "neutral" and intensity != "02":
            continue
        actor = int(u.speaker.split("/")[1])
        out.append(Utterance(u.id, u.path, u.corpus, u.speaker, u.label, u.gender,
                             extra={**u.extra, "group": (actor - 1) % folds + 1,
                                    "half": "voice"}))
    return out


def _ua(truth: list[str], probs: np.ndarray, labels: list[str]) -> float:
    pred = [labels[i] for i in probs.argmax(axis=1)]
    return round(classification_scores(truth, pred, labels)["ua"], 2)


def run_lexical_fold(k: int, utts: list[Utterance], args: argparse.Namespace) -> dict:
    """Train with fusion on the other groups; score audio, text and fused on group ``k``."""
    test = [u for u in utts if u.extra["group"] == k]
    train = [u for u in utts if u.extra["group"] != k]
    config = load_recipe(args.recipe, [*args.set, f"text.fusion='{args.fusion}'",
                                       f"text.source='{args.source}'"])
    started = time.time()
    model = fit(config, train, [], extra=test, cache_dir=args.cache, progress=True)
    seconds = round(time.time() - started, 1)
    bank = FeatureBank(build_frontend(model.frontend_config), test, args.cache,
                       config.data.cache_dtype, False)
    said = assess_utterances(model, bank, test, vectors=args.fusion == "embedding")
    audio = said.probabilities
    texts = utterance_texts(test, args.source, cache_dir=args.cache)
    answer = fused_answer(model, audio, texts, said.embeddings)
    has = answer.has_text
    labels = list(model.labels)
    doc = {**provenance(), "fold": k, "recipe": args.recipe, "sets": args.set,
           "fusion": args.fusion, "source": args.source, "n_train": len(train),
           "n_test": len(test), "test_voices": sorted({u.speaker for u in test}),
           "train_seconds": seconds, "weight": float(model.info["text"]["weight"]),
           "rule": model.info["text"]["rule"], "weight_curve": model.info["text"].get("curve"),
           "joint_check": model.info["text"].get("joint_check"),
           "joint_used": bool(model.info["text"].get("joint")),
           "n_test_with_text": int(has.sum())}
    for half in ("all", "words", "voice"):
        rows = [i for i, u in enumerate(test) if half == "all" or u.extra["half"] == half]
        truth = [str(test[i].label) for i in rows]
        with_text = [i for i in rows if has[i]]
        doc[half] = {"n": len(rows), "audio_ua": _ua(truth, audio[rows], labels),
                     "late_ua": _ua(truth, answer.late[rows], labels),
                     "fused_ua": _ua(truth, answer.fused[rows], labels),
                     "text_ua": _ua([str(test[i].label) for i in with_text],
                                    answer.text[with_text], labels) if with_text else None}
    doc["predictions"] = [{"id": u.id, "half": u.extra["half"], "transcript": texts[i],
                           "audio": labels[int(audio[i].argmax())],
                           "text": labels[int(answer.text[i].argmax())] if has[i] else None,
                           "late": labels[int(answer.late[i].argmax())],
                           "fused": labels[int(answer.fused[i].argmax())]}
                          for i, u in enumerate(test)]
    return doc


#: The real corpora's own protocols: (corpus, protocol, title, what their sentences are).
CORPORA = {
    "ravdess": ("ravdess6", "RAVDESS (6-fold speaker-independent, 8 classes",
                "Both sentences are said in every emotion"),
    "emodb": ("emodb_loso", "EmoDB (leave one speaker out, 7 classes, German sentences read by "
              "an English sentence encoder", "Its ten sentences are said in every emotion"),
}


def run_corpus(args: argparse.Namespace, folds: list[int] | None) -> None:
    """A real corpus's protocol with fusion, through run_cv (fold files kept)."""
    protocol = CORPORA[args.part][0]
    utts = load_corpus(args.part, args.data / args.part)
    config = load_recipe(args.recipe, [*args.set, f"text.fusion='{args.fusion}'",
                                       f"text.source='{args.source}'"])
    out = (args.out or OUT) / (args.part if args.source == "transcript" else
                               f"{args.part}@{args.source}")
    run_cv(config, utts, corpus=args.part, protocol=protocol, out_dir=out, folds=folds,
           cache_dir=args.cache, argv=sys.argv)


def _lexical_docs(source: str) -> list[dict]:
    folder = OUT / ("lexical" if source == "transcript" else f"lexical@{source}")
    return [json.loads(p.read_text()) for p in sorted(folder.glob("fold_*.json"))]


def _mean(values: list) -> float:
    """The mean of the values present (NaN when there are none)."""
    present = [float(v) for v in values if v is not None]
    return float(np.mean(present)) if present else float("nan")


def render() -> str:
    """The README block from the committed results."""
    parts = []
    for source in ("transcript", "asr"):
        docs = _lexical_docs(source)
        if not docs:
            continue
        mean = {h: {k: _mean([d[h].get(k) for d in docs])
                    for k in ("audio_ua", "late_ua", "fused_ua", "text_ua")}
                for h in ("all", "words", "voice")}
        joint = all(d.get("fusion") == "embedding" for d in docs)
        gains = [d["all"]["fused_ua"] - d["all"]["audio_ua"] for d in docs]
        revisions = sorted({d["git_revision"][:10] for d in docs})
        rules = sorted({f"{d['rule']} {d['weight']:.2f}" for d in docs})
        words = any("text.words=true" in (d.get("sets") or []) for d in docs)
        model = ("joint head with the word level" if words else "joint head") if joint \
            else "late fusion"
        used = sum(bool(d.get("joint_used", True)) for d in docs)
        usage = (f" (the joint head passed its out-of-fold check on {used} of {len(docs)} "
                 f"folds; late fusion answers on the others)"
                 if joint and used < len(docs) else "")
        late = (f"; late fusion alone (learned rule and weight: {', '.join(rules)}) "
                f"{mean['all']['late_ua']:.1f}" if joint else
                f" (learned rule and weight: {', '.join(rules)})")
        parts.append(
            f"- **Words or voice** (`benchmarks/text_fusion.py --part lexical"
            f"{'' if source == 'transcript' else ' --source asr'}`; {docs[0]['recipe']} with "
            f"`text.fusion={'embedding' if joint else 'late'}`, transcripts "
            f"{'as stated' if source == 'transcript' else 'by ASR'}; {len(docs)} of 4 folds of "
            f"held-out espeak-ng voices, sentences and RAVDESS actors; revision "
            f"{', '.join(revisions)}): UA audio alone {mean['all']['audio_ua']:.1f}, {model} "
            f"**{mean['all']['fused_ua']:.1f}** (gain {np.mean(gains):+.1f}, lowest fold "
            f"{min(gains):+.1f}){usage}{late}. Where the words carry the emotion: audio "
            f"{mean['words']['audio_ua']:.1f}, text alone {mean['words']['text_ua']:.1f}, "
            f"{model} {mean['words']['fused_ua']:.1f}; where the voice does: audio "
            f"{mean['voice']['audio_ua']:.1f}, {model} {mean['voice']['fused_ua']:.1f}. "
            f"Synthetic: it shows the fusion recovers what the words say on unseen voices and "
            f"sentences, not how much text helps on natural speech.")
    for corpus, source in ((c, s) for c in CORPORA for s in ("transcript", "asr")):
        folder = OUT / (corpus if source == "transcript" else f"{corpus}@{source}")
        if not (folder / "results.json").exists():
            continue
        title, sentences = CORPORA[corpus][1:]
        doc = json.loads((folder / "results.json").read_text())
        folds = [f for f in doc["folds"] if f.get("text")]
        if not folds:
            continue
        audio = float(np.mean([f["text"]["audio"]["ua"] for f in folds]))
        fused = float(np.mean([f["ua"] for f in folds]))
        joint = all(f["text"].get("late") for f in folds)
        words = "text.words=true" in str(doc.get("command") or "")
        used = sum(bool(f["text"].get("joint_used", True)) for f in folds)
        late = (f"; late fusion alone {np.mean([f['text']['late']['ua'] for f in folds]):.1f}; "
                f"the joint head passed its out-of-fold check on {used} of {len(folds)} folds"
                if joint else "")
        rules = sorted({f"{f['text'].get('rule', 'mean')} {f['text']['weight']:.2f}"
                        for f in folds})
        diffs = [f["ua"] - f["text"]["audio"]["ua"] for f in folds]
        revisions = sorted({str(f.get("git_revision"))[:10] for f in folds})
        parts.append(
            f"- **{title.split(' (')[0]}** ({title.split(' (', 1)[1]}, `--part {corpus}"
            f"{'' if source == 'transcript' else ' --source asr'}`; "
            f"{doc['recipe']} with `text.fusion={'embedding' if joint else 'late'}`, "
            f"transcripts {'as stated' if source == 'transcript' else 'by ASR'}; "
            f"{len(folds)} of {doc['n_folds']} folds; revision {', '.join(revisions)}): UA "
            f"audio alone {audio:.1f}, "
            f"{'joint head or late fusion' if joint else 'fused'}"
            f"{' with the word level' if words else ''} "
            f"**{fused:.1f}** ({fused - audio:+.1f}: higher on {sum(d > 0 for d in diffs)}, "
            f"lower on {sum(d < 0 for d in diffs)} of {len(diffs)} folds){late}"
            f" (learned rules and weights: {', '.join(rules)}). {sentences}, so the words "
            f"cannot help; the check is that fusion does not hurt"
            + ("; the word level also pools the voice within each recognised word, so a gain "
               "here is acoustic, not lexical." if words else "."))
    if not parts:
        return "The text fusion benchmark has not been run yet (`benchmarks/text_fusion.py`)."
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("lexical", *CORPORA), default="lexical")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--folds", type=int, default=4, help="groups of the lexical part")
    parser.add_argument("--folds-run", default=None, help="folds to run, e.g. 1,2")
    parser.add_argument("--recipe", default="whisper_logreg")
    parser.add_argument("--source", choices=("transcript", "asr"), default="transcript")
    parser.add_argument("--fusion", choices=("late", "embedding"), default="embedding",
                        help="the model's fusion (embedding: the joint head, and the late "
                        "fusion it also learns, both scored)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) /
                        "emovox-text-fusion", help="where the espeak-ng half is made (kept)")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--table", action="store_true", help="only write the README block "
                        "(runs never touch the README, so parts can follow each other in one "
                        "clean checkout)")
    parser.add_argument("--out", type=Path, default=None, help="exploration: results go here "
                        "instead of the committed folder")
    args = parser.parse_args()
    todo = [int(k) for k in args.folds_run.split(",")] if args.folds_run else None
    if not args.table:
        needs = "ravdess" if args.part == "lexical" else args.part
        if not (args.data / needs).is_dir():
            raise SystemExit(f"text_fusion.py: no {needs} under {args.data} (give --data)")
        if args.part in CORPORA:
            run_corpus(args, todo)
        else:
            utts = make_corpus(args.work, args.folds) + ravdess_half(args.data, args.folds)
            out = (args.out or OUT) / ("lexical" if args.source == "transcript"
                                       else f"lexical@{args.source}")
            out.mkdir(parents=True, exist_ok=True)
            for k in todo or range(1, args.folds + 1):
                path = out / f"fold_{k}.json"
                if path.exists():
                    continue
                doc = run_lexical_fold(k, utts, args)
                write_text(path, json.dumps(doc, indent=1))
                print(f"fold {k}: UA audio {doc['all']['audio_ua']:.2f}, fused "
                      f"{doc['all']['fused_ua']:.2f} (words: audio {doc['words']['audio_ua']:.2f}"
                      f", text {doc['words']['text_ua']}, fused {doc['words']['fused_ua']:.2f}; "
                      f"weight {doc['weight']:.2f})", flush=True)
    if args.table:  # only here: a run leaves the checkout clean for the next part
        write_between(README, START, END, render())
    print(render())


if __name__ == "__main__":
    main()
