"""Tiny stand-ins for the real raw corpora, with their archive names, folder layouts and
formats (IWSLT's metadata tags and XML, WMT's SGML test sets, gzipped files inside tar
archives, WikiText's token files), so that the data-prep scripts run as on the real ones."""
import gzip
import random
import tarfile
import zipfile
from pathlib import Path

WORDS = {
    "de": "der die das haus katze hund läuft schnell groß klein über unter grün blau Straße".split(),
    "en": "the a house cat dog runs quickly big small over under green blue street road".split(),
    "fr": "le la maison chat chien court vite grand petit sur sous vert bleu rue été".split(),
    "ro": "casa pisică câine aleargă repede mare mică peste sub verde albastru stradă şi ţară".split(),
}


def sentences(lang: str, n: int, seed: int):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = rng.choices(WORDS[lang], k=rng.randint(3, 12))
        out.append(" ".join(words).capitalize() + rng.choice([".", "!", " ?", ", oder?" if lang == "de" else "."]))
    return out


def _write(path: Path, lines, gz: bool = False):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if gz else data)


def _tar(archive: Path, folder: Path, members):
    with tarfile.open(archive, "w:gz" if archive.suffix in (".tgz", ".gz") else "w") as tar:
        for m in members:
            tar.add(folder / m, arcname=m)


def _sgm(path: Path, lines, lang: str):
    body = [f'<srcset setid="newstest" srclang="any"><doc sysid="ref" docid="1" genre="news" origlang="{lang}">']
    body += [f'<seg id="{i + 1}">{s.replace("&", "&amp;")}</seg>' for i, s in enumerate(lines)]
    _write(path, body + ["</doc>", "</srcset>"])


def iwslt14(root: Path, n_train: int = 400) -> Path:
    """``root/de-en.tgz`` as published: train.tags.* with metadata tags, XML test sets."""
    src = root / "src"
    tags = ["<url>http://www.ted.com/talks/x.html</url>", "<keywords>talks, science</keywords>",
            "<speaker>Someone</speaker>", "<talkid>1</talkid>", "<title>A talk</title>",
            "<description>TED Talk Subtitles and Transcript: a talk</description>"]
    members = []
    for lang, seed in (("de", 1), ("en", 1)):
        lines = sentences(lang, n_train, seed)
        _write(src / f"de-en/train.tags.de-en.{lang}", tags + lines[: n_train // 2] + tags + lines[n_train // 2 :])
        members.append(f"de-en/train.tags.de-en.{lang}")
        for i, name in enumerate(["TED.dev2010", "TED.tst2010", "TED.tst2011", "TED.tst2012", "TEDX.dev2012"]):
            segs = sentences(lang, 6, seed * 10 + i)
            path = f"de-en/IWSLT14.{name}.de-en.{lang}.xml"
            _write(src / path, ['<?xml version="1.0" encoding="UTF-8"?>', "<mteval>", f'<refset setid="{name}">',
                                '<doc docid="1" genre="lectures">', "<talkid>1</talkid>"]
                   + [f'<seg id="{j + 1}"> {s} </seg>' for j, s in enumerate(segs)] + ["</doc>", "</refset>", "</mteval>"])
            members.append(path)
    root.mkdir(parents=True, exist_ok=True)
    _tar(root / "de-en.tgz", src, members)
    return root


def wikitext103(root: Path, n_train: int = 300) -> Path:
    """``root/wikitext-103-v1.zip`` with wikitext-103/wiki.{train,valid,test}.tokens."""
    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(root / "wikitext-103-v1.zip", "w") as z:
        for split, n, seed in (("train", n_train, 1), ("valid", 40, 2), ("test", 40, 3)):
            lines = [" = Heading = ", ""] + [s.lower() + " @-@ <unk>" for s in sentences("en", n, seed)]
            z.writestr(f"wikitext-103/wiki.{split}.tokens", "\n".join(lines) + "\n")
    return root


def ptb(root: Path) -> Path:
    """``root/simple-examples.tgz`` with simple-examples/data/ptb.{train,valid,test}.txt: lower
    case, numbers as N, rare words as <unk>, a leading space on each line (as Mikolov's)."""
    src = root / "src"
    for split, n, seed in (("train", 200, 1), ("valid", 30, 2), ("test", 30, 3)):
        lines = [" " + " ".join("<unk>" if i % 7 == 3 else w for i, w in enumerate(s.lower().split())) + " N"
                 for s in sentences("en", n, seed)]
        _write(src / "simple-examples" / "data" / f"ptb.{split}.txt", lines)
    _tar(root / "simple-examples.tgz", src, ["simple-examples"])
    return root


def _parallel(src_dir: Path, prefix: str, langs, n: int, seed: int, gz: bool = False):
    """``prefix.L`` for both languages (same line count), gzipped when asked."""
    paths = []
    for lang in langs:  # one seed: the two sides have matching lengths, as parallel text
        path = src_dir / f"{prefix}.{lang}{'.gz' if gz else ''}"
        _write(path, sentences(lang, n, seed), gz=gz)
        paths.append(path.relative_to(src_dir).as_posix())
    return paths


def wmt14(root: Path, tgt: str, n: int = 150) -> Path:
    """The WMT'14 En-De (``tgt='de'``) or En-Fr (``tgt='fr'``) archives."""
    src = root / "src"
    pair = f"{tgt}-en"
    members = {
        "training-parallel-europarl-v7.tgz": _parallel(src, f"training/europarl-v7.{pair}", (tgt, "en"), n, 1),
        "training-parallel-commoncrawl.tgz": _parallel(src, f"commoncrawl.{pair}", (tgt, "en"), n, 3),
        "training-parallel-nc-v9.tgz": _parallel(src, f"training/news-commentary-v9.{pair}", (tgt, "en"), n, 5),
    }
    if tgt == "fr":
        members["training-parallel-un.tgz"] = _parallel(src, "un/undoc.2000.fr-en", ("fr", "en"), n, 7)
        members["training-giga-fren.tar"] = _parallel(src, "giga-fren.release2.fixed", ("fr", "en"), n, 9, gz=True)
    test = f"newstest2014-{tgt}en" if tgt == "de" else "newstest2014-fren"
    _sgm(src / f"test-full/{test}-src.en.sgm", sentences("en", 20, 11), "en")
    _sgm(src / f"test-full/{test}-ref.{tgt}.sgm", sentences(tgt, 20, 12), tgt)
    members["test-full.tgz"] = [f"test-full/{test}-src.en.sgm", f"test-full/{test}-ref.{tgt}.sgm"]
    root.mkdir(parents=True, exist_ok=True)
    for archive, files in members.items():
        _tar(root / archive, src, files)
    return root


def wmt14_en_de_define(root: Path, n: int = 150) -> Path:
    """WMT'14 En-De's archives and WMT'17's test.tgz (newstest2017, 25 sentences: longer ones
    too, which cleaning would drop from a training set)."""
    wmt14(root, "de", n)
    src = root / "src"
    long = " ".join(["word"] * 300)
    _sgm(src / "test/newstest2017-ende-src.en.sgm", sentences("en", 24, 21) + [long], "en")
    _sgm(src / "test/newstest2017-ende-ref.de.sgm", sentences("de", 24, 22) + ["kurz ."], "de")
    _tar(root / "wmt17-test.tgz", src, ["test/newstest2017-ende-src.en.sgm", "test/newstest2017-ende-ref.de.sgm"])
    return root


def wmt16_en_ro(root: Path, n: int = 200) -> Path:
    """Europarl v8, SETIMES2 (OPUS zip), dev.tgz and test.tgz, with Romanian cedillas."""
    src = root / "src"
    root.mkdir(parents=True, exist_ok=True)
    _tar(root / "training-parallel-ep-v8.tgz", src,
         _parallel(src, "training-parallel-ep-v8/europarl-v8.ro-en", ("ro", "en"), n, 1))
    with zipfile.ZipFile(root / "en-ro.txt.zip", "w") as z:
        for lang in ("en", "ro"):
            z.writestr(f"SETIMES.en-ro.{lang}", "".join(s + "\n" for s in sentences(lang, n, 3)))
        z.writestr("README", "SETIMES2\n")
    for archive, folder, name, seed in (("dev.tgz", "dev", "newsdev2016", 5), ("test.tgz", "test", "newstest2016", 7)):
        _sgm(src / f"{folder}/{name}-enro-src.en.sgm", sentences("en", 15, seed), "en")
        _sgm(src / f"{folder}/{name}-enro-ref.ro.sgm", sentences("ro", 15, seed + 1), "ro")
        _tar(root / archive, src, [f"{folder}/{name}-enro-src.en.sgm", f"{folder}/{name}-enro-ref.ro.sgm"])
    return root
