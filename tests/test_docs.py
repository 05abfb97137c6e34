"""The README and docs/ point nowhere that does not exist, and quote no figure without its source.

Checked without importing fairseq or torch (files are read as text, Python with ``ast`` and
``tokenize``):

- every relative Markdown link of README.md and docs/*.md names a file that exists, and its
  ``#anchor`` a heading of that file (GitHub's slugs);
- every repository path named in README.md, docs/, the configs' comments and the comments and
  docstrings of delight_fairseq/ (and scripts/, data-prep/, benchmarks/) exists; dotted
  ``delight_fairseq.x.y`` names resolve to a module and a name defined in it;
- every ``README, "Section"`` / ``docs/page.md, "Section"`` / ``see "Section"`` names a heading
  that exists, and every "Table N" of the DeFINE paper is one that docs/define.md has, cited for
  the subject that table holds;
- nothing names a path outside the repository or the machines it was developed on;
- the figures the pages quote from a test or a benchmark are the source's;
- docs/code-map.md's generated parts are what ``scripts/code_map.py`` gives for the code now.
"""
import ast
import io
import re
import subprocess
import sys
import tokenize
import unicodedata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
TOP = ("configs", "scripts", "delight_fairseq", "data-prep", "benchmarks", "tests", "docs")
CODE_DIRS = ("delight_fairseq", "scripts", "data-prep", "benchmarks")

# References in files this page's owners may not edit, known to be wrong and reported to
# their owners: (file, the cited text). Remove an entry once its file is fixed.
PENDING = set()  # (file, reference) pairs allowed to stay stale until their fix lands: none


# ----- reading ------------------------------------------------------------------------------

def rel(path: Path) -> str:
    try:
        return path.relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def without_code_blocks(text: str) -> str:
    """Markdown with its fenced blocks blanked (line numbers kept)."""
    return re.sub(r"^```.*?^```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S | re.M)


def headings(path: Path):
    text = without_code_blocks(path.read_text(encoding="utf-8"))
    return [m.group(1).strip() for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)]


def plain(heading: str) -> str:
    return heading.replace("`", "").replace("*", "").strip()


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    out = []
    for ch in plain(heading).lower():
        if ch in " -":
            out.append("-")
        elif ch == "_" or unicodedata.category(ch)[0] in "LN":
            out.append(ch)
    return "".join(out)


def python_comments(path: Path) -> str:
    """A Python file's comments and docstrings, comment runs joined into one text each."""
    source = path.read_text(encoding="utf-8")
    chunks, run = [], []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            run.append(tok.string.lstrip("#").strip())
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT) and run:
            chunks.append(" ".join(run))
            run = []
    chunks.append(" ".join(run))
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                chunks.append(" ".join(doc.split()))
    return "\n".join(c for c in chunks if c)


def hash_comments(path: Path) -> str:
    """The comments of a YAML or shell file, each run of comment lines joined."""
    chunks, run = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not stripped.startswith("#!"):
            run.append(stripped.lstrip("#").strip())
        elif run:
            chunks.append(" ".join(run))
            run = []
    chunks.append(" ".join(run))
    return "\n".join(c for c in chunks if c)


def sources():
    """(file, text to check): the pages, the configs' comments, the code's comments."""
    out = [(p, without_code_blocks(p.read_text(encoding="utf-8"))) for p in PAGES]
    out += [(p, hash_comments(p)) for p in sorted((REPO / "configs").rglob("*.yaml"))]
    for d in CODE_DIRS:
        for p in sorted((REPO / d).rglob("*")):
            if "__pycache__" in p.parts or not p.is_file():
                continue
            if p.suffix == ".py":
                out.append((p, python_comments(p)))
            elif p.suffix in (".sh", ".yaml"):
                out.append((p, hash_comments(p)))
    out += [(REPO / "pyproject.toml", hash_comments(REPO / "pyproject.toml"))]
    return out


SOURCES = sources()


def pending(path: Path, cited: str) -> bool:
    return (rel(path), cited) in PENDING


# ----- (a) links ----------------------------------------------------------------------------

def broken_links(pages=PAGES):
    bad = []
    for page in pages:
        text = without_code_blocks(page.read_text(encoding="utf-8"))
        for m in re.finditer(r"\[[^\]]*\]\(([^)\s]+)\)", text):
            target = m.group(1)
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                bad.append(f"{rel(page)}: link to {target}: no such file")
            elif anchor and (dest.suffix != ".md" or anchor not in {slug(h) for h in headings(dest)}):
                bad.append(f"{rel(page)}: link to {target}: no heading with that anchor")
    return bad


def test_every_relative_link_resolves():
    assert broken_links() == []


def test_the_link_check_catches_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# A heading\n\n[ok](#a-heading) [bad](#no-heading) [gone](missing.md)\n")
    assert len(broken_links([page])) == 2


# ----- (b) paths ----------------------------------------------------------------------------

PATH_RE = re.compile(r"(?<![\w./-])((?:%s)/[\w.*{},/-]*[\w*}/])" % "|".join(re.escape(t) for t in TOP))
DOTTED_RE = re.compile(r"(?<![\w./])(delight_fairseq(?:\.\w+)+)")


def path_exists(path: str) -> bool:
    path = path.rstrip("/")
    path = re.sub(r"\b[A-Z][A-Z_]*\b", "*", path)  # NAME, DATASET: placeholders
    for options in re.findall(r"\{([^}]*)\}", path):  # a_{1,2}: each one
        path = path.replace("{%s}" % options, "*", 1)
    if "*" in path:
        return any(REPO.glob(path))
    return (REPO / path).exists()


def dotted_exists(name: str) -> bool:
    parts = name.split(".")
    here = REPO / parts[0]
    for i, part in enumerate(parts[1:], 1):
        if part.startswith("__"):  # __file__, __version__: every module has them
            return True
        if (here / part).is_dir() or (here / f"{part}.py").is_file():
            here = here / part if (here / part).is_dir() else here / f"{part}.py"
            continue
        source = here / "__init__.py" if here.is_dir() else here
        return bool(re.search(r"\b%s\b" % re.escape(part), source.read_text(encoding="utf-8")))
    return True


def dead_paths():
    bad = []
    for path, text in SOURCES:
        for m in PATH_RE.finditer(text):
            cited = m.group(1).rstrip(".,;:)")
            if not path_exists(cited) and not pending(path, cited):
                bad.append(f"{rel(path)}: {cited}")
        for m in DOTTED_RE.finditer(text):
            if not dotted_exists(m.group(1)) and not pending(path, m.group(1)):
                bad.append(f"{rel(path)}: {m.group(1)}")
    return bad


def test_every_named_repository_path_exists():
    assert dead_paths() == []


# ----- (c) sections and tables --------------------------------------------------------------

SECTION_RE = re.compile(r"""(README|docs/[\w-]+\.md)(?:\.md)?,? ["'“]([^"'”]+)["'”]""")
SEE_RE = re.compile(r"""\bsee ["“]([^"”]+)["”]""")
ALL_HEADINGS = {plain(h) for p in PAGES for h in headings(p)}


def dead_sections():
    bad = []
    for path, text in SOURCES:
        for m in SECTION_RE.finditer(text):
            page = REPO / ("README.md" if m.group(1) == "README" else m.group(1))
            ok = page.exists() and m.group(2) in {plain(h) for h in headings(page)}
            if not ok and not pending(path, m.group(0)):
                bad.append(f"{rel(path)}: {m.group(0)}")
        for m in SEE_RE.finditer(text):
            if m.group(1) not in ALL_HEADINGS and not pending(path, m.group(0)):
                bad.append(f"{rel(path)}: {m.group(0)}")
    return bad


def test_every_cited_section_exists():
    assert dead_sections() == []


# The DeFINE paper's tables (docs/define.md's headings) and what each holds.
TABLE_RE = re.compile(r"\bTables? (\d+[a-c]?)")
SUBJECTS = [  # keyword in the text near the citation -> the tables it may cite
    (re.compile(r"Transformer-XL|transformer_xl|TXL", re.I), {"2"}),
    (re.compile(r"AWD|Penn Treebank|PTB"), {"1c"}),
    (re.compile(r"WMT|Transformer base|translation"), {"3"}),
    (re.compile(r"(?<!AWD-)LSTM"), {"1", "1a", "4", "4a", "4b", "5", "6", "6a", "6b"}),  # the ablations are on it
]
ABLATIONS = {"4", "4a", "4b", "5", "6", "6a", "6b"}  # docs/define.md, "Tables 4–6: ablation sweeps"


def define_tables():
    found = set()
    for h in headings(REPO / "docs" / "define.md"):
        m = re.match(r"Tables? (\d+)([a-c]?)(?:–(\d+))?:", plain(h))
        if m:
            first, last = int(m.group(1)), int(m.group(3) or m.group(1))
            found |= {f"{n}" for n in range(first, last + 1)} | {f"{m.group(1)}{m.group(2)}"}
    return found


def misnumbered_tables():
    known = define_tables() | ABLATIONS
    bad = []
    for path, text in SOURCES:
        if path.name == "RESULTS.md":
            continue
        if path.name == "code-map.md":  # its module list quotes the docstrings, checked where they are
            text = re.sub(r"<!-- code_map:layout:begin -->.*?<!-- code_map:layout:end -->", "", text, flags=re.S)
        for m in TABLE_RE.finditer(text):
            before = text[max(0, m.start() - 25):m.start()]
            if "DeLighT" in before or "define" not in (rel(path) + text).lower():
                continue  # a table of the DeLighT paper, or a file that is not about DeFINE
            table, cited = m.group(1), m.group(0)
            start = max(text.rfind("\n", 0, m.start()) + 1, m.start() - 120)
            end = text.find("\n", m.end())
            near = text[start:min(end if end >= 0 else len(text), m.end() + 120)]
            centre = m.start() - start
            hits = [(abs(k.start() - centre), allowed) for rx, allowed in SUBJECTS for k in rx.finditer(near)]
            allowed = min(hits, key=lambda h: h[0])[1] if hits else known
            if (table not in known or table not in allowed) and not pending(path, cited):
                bad.append(f"{rel(path)}: {cited} ({near.strip()[:100]!r})")
    return bad


def test_the_define_papers_tables_are_cited_by_their_number():
    assert define_tables() >= {"1", "1a", "1c", "2", "3"}
    assert misnumbered_tables() == []


# ----- (d) nothing outside the repository ---------------------------------------------------

OUTSIDE = re.compile(r"\.\./shared|(?<![\w.])/shared/|\.whl/install\.sh")
MACHINES = re.compile(r"\blent\b|\bno GPU (?:has been|was)\b", re.I)


def test_no_file_names_a_path_outside_the_repository():
    bad = [f"{rel(p)}: {m.group(0)}" for p, _ in SOURCES for m in OUTSIDE.finditer(p.read_text(encoding="utf-8"))
           if not pending(p, m.group(0))]
    assert bad == []


def test_the_docs_say_nothing_about_the_machines_they_were_written_on():
    texts = [(p, p.read_text(encoding="utf-8")) for p in PAGES]
    texts += [(p, hash_comments(p)) for p in sorted((REPO / "configs").rglob("*.yaml"))]
    assert [rel(p) for p, t in texts if MACHINES.search(t)] == []


# ----- (e) figures --------------------------------------------------------------------------

def read(path: str) -> str:
    return (REPO / path).read_text(encoding="utf-8")


# (page, what it says, source, what the source says)
FIGURES = [
    ("README.md", "above 95", "tests/test_cli.py", "bleu > 95"),
    ("docs/models.md", "99,247,668", "tests/test_define_lm.py", "delight == 99_247_668"),
    ("docs/models.md", "+8.5% at `d_m` 128 to +41%", "tests/test_presets.py", "8.5% (d_m 128) to 41% (d_m 640)"),
    ("docs/models.md", "requires below 8", "tests/test_lm_cli.py", "ppl < 8"),
    ("docs/models.md", "unigram perplexity of about 154", "tests/test_sweep.py", "UNIGRAM_PPL = 154"),
    ("docs/models.md", "within 3%", "tests/test_define_lm.py", "< 0.03"),
    ("docs/define.md", "within 3%", "tests/test_define_lm.py", "< 0.03"),
    ("docs/define.md", "24,221,600", "tests/test_define_paper.py", "24_221_600"),
    ("docs/define.md", "three LSTMs are 20.21M", "tests/test_define_paper.py", "== 20_211_600"),
    ("docs/define.md", "| 22.80M |", "tests/test_define_paper.py", "_count(define) == 22_804_144"),
    ("docs/define.md", "| 111.32M |", "tests/test_define_paper.py", "111_316_992"),
    ("docs/define.md", "| 66.53M |", "tests/test_define_paper.py", "66_531_328"),
    ("docs/define.md", "| 51.42M |", "tests/test_define_paper.py", "51_422_226"),
    ("docs/define.md", "44.14M network", "tests/test_define_paper.py", "44_138_496"),
    ("docs/define.md", "(0.71M with 200 words)", "tests/test_define_paper.py", "== 710_336"),
    ("docs/define.md", "(0.11M with 200 words)", "tests/test_define_paper.py", "== 112_106"),
    ("docs/checkpoints.md", "to 1e-4", "tests/test_authors.py", "atol=1e-4"),
    ("docs/reproducing.md", "~1e9", "tests/test_precision.py", "~1e9"),
]


@pytest.mark.parametrize("page, says, source, source_says", FIGURES, ids=[f"{f[0]}:{f[1]}" for f in FIGURES])
def test_a_quoted_figure_is_its_sources(page, says, source, source_says):
    assert says in " ".join(read(page).split()), f"{page} no longer says {says!r}: update FIGURES"
    assert source_says in read(source), f"{source} no longer has {source_says!r}, which {page} quotes"


def test_no_test_count_is_written():
    for page in PAGES:
        assert not re.search(r"\d+ of the \d+ tests|\d+ tests\b", page.read_text(encoding="utf-8")), rel(page)


RATIO = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?(?:[–-]\d+(?:\.\d+)?)?(?:x|%|M))(?![\w])")


def test_speed_figures_are_those_of_the_benchmark_results():
    results = read("benchmarks/RESULTS.md")
    page = without_code_blocks(read("docs/speed-and-memory.md"))
    quoted = set(RATIO.findall(page))
    assert len(quoted) > 10
    assert sorted(q for q in quoted if q not in results) == []
    # no other page quotes a speed or memory ratio
    for other in PAGES:
        if other.name != "speed-and-memory.md":
            ratios = re.findall(r"(?<![\w.×])\d+(?:\.\d+)?x\b", without_code_blocks(other.read_text(encoding="utf-8")))
            assert ratios == [], f"{rel(other)} quotes {ratios}: state it in docs/speed-and-memory.md"


def _literal_calls(path: str, name: str):
    """The keyword-free positional literals of every ``Preset(...)`` in ``name``'s dict."""
    tree = ast.parse(read(path))
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and any(getattr(t, "id", None) == name for t in targets):
            for key, value in zip(node.value.keys, node.value.values):
                yield key.value, value
            return


def presets_file() -> str:
    for path in sorted((REPO / "delight_fairseq" / "models").rglob("*.py")):
        if re.search(r"^PRESETS\b.*=", path.read_text(encoding="utf-8"), re.M):
            return rel(path)
    raise AssertionError("no PRESETS table in delight_fairseq/models/")


def test_the_preset_table_is_the_codes():
    """docs/models.md's published params and BLEU are those of ``PRESETS`` in the code."""
    presets = {}
    for arch, call in _literal_calls(presets_file(), "PRESETS"):
        args = [a.value if isinstance(a, ast.Constant) else None for a in call.args]
        unit = next((k.value.id for k in call.keywords if k.arg == "params_unit"), None)
        presets[arch] = (args[4], args[5], unit)
    rows = {}
    for line in read("docs/models.md").splitlines():
        m = re.match(r"\| `(delight_transformer_\w+)` \|(?:[^|]*\|){3} ([^|]+) \| ([\d.]+) \|$", line)
        if m:
            rows[m.group(1)] = (m.group(2).strip(), float(m.group(3)))
    assert set(rows) == set(presets)
    for arch, (params_text, bleu) in rows.items():
        params, published_bleu, unit = presets[arch]
        assert bleu == published_bleu, arch
        shown = f"{params / 1e6:.2f}M" if unit else f"{params:,}"
        assert params_text.startswith(shown), (arch, params_text, shown)


def _test_tables():
    tree = ast.parse(read("tests/test_define_paper.py"))
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") in ("TABLE_1A", "TABLE_2"):
            out.update(ast.literal_eval(node.value))
    return out


def test_the_define_tables_are_the_counts_the_tests_pin():
    """docs/define.md's Table 1a and 2 rows: ours (rounded) and the paper's, as pinned by
    tests/test_define_paper.py, column by column (DeFINE, context, in-out, total)."""
    pinned = _test_tables()
    seen = set()
    for line in read("docs/define.md").splitlines():
        arch = re.search(r"`(define_(?:lstm_lm|transformer_xl)_wiki103_\w+)`", line)
        if not arch or arch.group(1) not in pinned:
            continue
        cells = re.findall(r"([\d.]+) / ([\d.]+)", line)
        (context, define, inout, total), published = pinned[arch.group(1)]
        expected = [(define, published[1]), (context, published[0]), (inout, published[2]), (total, published[3])]
        for (ours_text, paper_text), (ours, paper) in zip(cells, expected):
            assert float(ours_text) == round(ours / 1e6, 2), (arch.group(1), ours_text, ours)
            assert float(paper_text) == paper, (arch.group(1), paper_text, paper)
        seen.add(arch.group(1))
    assert seen == set(pinned)


# ----- the code map -------------------------------------------------------------------------

def test_the_code_map_is_up_to_date():
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "code_map.py"), "--check"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr + run.stdout


def test_the_readme_links_every_docs_page():
    readme = read("README.md")
    for page in sorted((REPO / "docs").glob("*.md")):
        assert f"(docs/{page.name})" in readme, page.name
