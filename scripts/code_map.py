"""Write the generated parts of docs/code-map.md from the code of delight_fairseq/.

Three regions of the page, each between a pair of marker comments
(<!-- code_map:NAME:begin --> ... <!-- code_map:NAME:end -->), are written here from the
source, read with ``ast`` (nothing is imported, so neither torch nor fairseq is needed):

  graph     the import graph as a Mermaid flowchart: one node per module, one box per package
            folder, an arrow for every import of one module of the package by another
            (solid: at module level; dotted: inside a function, imported when first used)
  layout    every folder and module with the first line of its docstring
  concepts  each idea of the papers (and each step of one token's path through the
            translation model) with the file where its class, function or table is defined (no line
            numbers, so that editing a file does not make the page stale)

Everything between the markers is replaced; the text around them is left as it is. A
concept whose symbol is no longer defined anywhere stops the script with its name, so a
refactor that moves or renames one shows up here (update CONCEPTS / TOKEN_PATH below).
"""
import argparse
import ast
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "delight_fairseq"

# (concept, symbol): a symbol is a top-level class or function, or Class.method
CONCEPTS = [
    ("group linear transform (DeLighT Eq. 1)", "GroupLinear"),
    ("the group matmul with the input mixer inside it", "_GroupMatmul"),
    ("feature shuffle", "feature_shuffle"),
    ("input mixer (DeFINE's split-and-mix)", "mix_inputs"),
    ("DExTra (DeLighT Eq. 2-3)", "DExTra"),
    ("DExTra's widths and groups per layer", "dextra_schedule"),
    ("the groups cap g_max", "default_max_groups"),
    ("block-wise scaling (DeLighT Eq. 4)", "block_scaling"),
    ("single-head attention (DeLighT Eq. 5)", "SingleHeadAttention"),
    ("attention dropout that keeps its mask as bytes", "dropout_attention"),
    ("light FFN", "LightFFN"),
    ("the DeLighT block", "DeLighTLayer"),
    ("DExTra embedding (a narrow lookup expanded by a DExTra)", "DeLighTEmbedding"),
    ("DeFINE embedding", "DeFINEEmbedding"),
    ("hierarchical group transform", "HierarchicalGroupTransform"),
    ("HGT's widths and groups per layer", "hgt_schedule"),
    ("AWD-LSTM's weight drop", "WeightDropLSTM"),
    ("AWD-LSTM's locked dropout", "LockedDropout"),
    ("AWD-LSTM's word dropout", "word_dropout"),
    ("a norm's or activation's output kept once for backward (memory, not a paper idea)", "recomputed"),
    ("the DeLighT translation presets", "PRESETS"),
    ("the authors' adaptive input", "DeLighTAdaptiveInput"),
    ("parameters and MACs as the authors count them", "translation_stats"),
    ("correlation maps of embeddings", "embedding_maps"),
    ("opening an untrusted checkpoint", "load_checkpoint"),
    ("converting a checkpoint of the authors' fork", "convert_checkpoint"),
    ("everything the plugin changes in fairseq", "PATCHES"),
]

# one token through the translation model, in order
TOKEN_PATH = [
    ("the encoder takes the source tokens", "DeLighTEncoder.forward"),
    ("looked up in the 128-wide table, scaled by sqrt(128), one dropout mask per sentence", "MappedEmbedding.lookup"),
    ("expanded to d_m by the embedding's DExTra", "DeLighTEmbedding"),
    ("sinusoidal position added, then dropout", "embedding_dropout"),
    ("B blocks: DExTra d_m -> d_m/2, single-head attention back to d_m, residual, norm, light FFN", "DeLighTLayer.forward"),
    ("the decoder does the same for the target prefix", "DeLighTDecoder.extract_features"),
    ("each decoder block also attends to the encoder output, caching keys and values", "DeLighTDecoderLayer"),
    ("d_m -> 128, scored against the (shared) table", "DeLighTDecoder.output_layer"),
]

MARK = "<!-- code_map:{}:{} -->"


def modules(root: Path) -> Dict[str, Path]:
    """Dotted module name -> file, for every .py of the package (packages by their __init__)."""
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_package(name: str, mods: Dict[str, Path]) -> bool:
    return mods[name].name == "__init__.py"


def _resolve(current: str, mods: Dict[str, Path], node: ast.ImportFrom) -> List[str]:
    """The package's modules one ``from ... import ...`` names."""
    if node.level:
        base = current.split(".") if _is_package(current, mods) else current.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not (target == PACKAGE or target.startswith(PACKAGE + ".")):
        return []
    found = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        if sub in mods:
            found.append(sub)
        elif target in mods:
            found.append(target)
    return found


def imports(mods: Dict[str, Path]) -> Dict[Tuple[str, str], bool]:
    """(importer, imported) -> True when the import is at module level (else inside a function)."""
    edges: Dict[Tuple[str, str], bool] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        lazy: Set[int] = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lazy.update(id(n) for n in ast.walk(fn))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                targets = _resolve(name, mods, node)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name in mods]
            else:
                continue
            for target in targets:
                if target != name:
                    top = id(node) not in lazy
                    edges[(name, target)] = edges.get((name, target), False) or top
    return edges


def _node_id(name: str) -> str:
    return name.replace(".", "_")


def graph(mods: Dict[str, Path]) -> str:
    edges = imports(mods)
    folders: Dict[str, List[str]] = {}
    for name in mods:
        parent = name if _is_package(name, mods) else name.rpartition(".")[0]
        folders.setdefault(parent, []).append(name)
    lines = ["```mermaid", "flowchart LR"]
    for folder in sorted(folders):
        label = folder.replace(".", "/") + "/"
        lines.append(f"  subgraph {_node_id(folder)}_dir [\"{label}\"]")
        for name in sorted(folders[folder]):
            short = "__init__" if _is_package(name, mods) else name.rpartition(".")[2]
            lines.append(f"    {_node_id(name)}[\"{short}\"]")
        lines.append("  end")
    for (src, dst), top in sorted(edges.items()):
        lines.append(f"  {_node_id(src)} {'-->' if top else '-.->'} {_node_id(dst)}")
    lines.append("```")
    n_top = sum(edges.values())
    lines.append("")
    lines.append(f"{len(mods)} modules; {n_top} imports at module level (solid), "
                 f"{len(edges) - n_top} inside functions (dotted).")
    return "\n".join(lines)


def _first_line(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    return first.replace("|", "\\|")


def layout(root: Path, mods: Dict[str, Path]) -> str:
    lines = ["| file | what it is (its docstring's first paragraph) |", "| --- | --- |"]
    for name, path in sorted(mods.items(), key=lambda kv: kv[1].relative_to(root).parts):
        lines.append(f"| `{path.relative_to(root).as_posix()}` | {_first_line(path)} |")
    return "\n".join(lines)


def definitions(root: Path, mods: Dict[str, Path]) -> Dict[str, List[Tuple[str, int]]]:
    """Symbol (top-level name, or Class.method) -> [(file, line)] where it is defined."""
    out: Dict[str, List[Tuple[str, int]]] = {}
    for path in mods.values():
        rel = path.relative_to(root).as_posix()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            names = []
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                names.append(node.name)
                if isinstance(node, ast.ClassDef):
                    names += [f"{node.name}.{m.name}" for m in node.body
                              if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names += [t.id for t in targets if isinstance(t, ast.Name)]
            for n in names:
                line = node.lineno
                if "." in n:
                    line = next(m.lineno for m in node.body if getattr(m, "name", None) == n.split(".")[1])
                out.setdefault(n, []).append((rel, line))
    return out


def _where(symbol: str, defs: Dict[str, List[Tuple[str, int]]]) -> str:
    places = defs.get(symbol)
    if not places:
        raise SystemExit(f"code_map.py: `{symbol}` is defined nowhere in {PACKAGE}/ any more; "
                         "update CONCEPTS / TOKEN_PATH in scripts/code_map.py")
    return ", ".join(sorted({f"`{rel}`" for rel, _ in places}))


def concepts(root: Path, mods: Dict[str, Path]) -> str:
    defs = definitions(root, mods)
    lines = ["| concept | symbol | defined in |", "| --- | --- | --- |"]
    lines += [f"| {c} | `{s}` | {_where(s, defs)} |" for c, s in CONCEPTS]
    lines += ["", "One token through the translation model, step by step:", "",
              "| # | step | symbol | defined in |", "| --- | --- | --- | --- |"]
    lines += [f"| {i} | {c} | `{s}` | {_where(s, defs)} |" for i, (c, s) in enumerate(TOKEN_PATH, 1)]
    return "\n".join(lines)


def render(text: str, root: Path) -> str:
    mods = modules(root)
    parts = {"graph": lambda: graph(mods), "layout": lambda: layout(root, mods),
             "concepts": lambda: concepts(root, mods)}
    for name, make in parts.items():
        begin, end = MARK.format(name, "begin"), MARK.format(name, "end")
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise SystemExit(f"code_map.py: the page has no {begin} ... {end} region")
        body = make()
        text = pattern.sub(lambda _m: f"{begin}\n{body}\n{end}", text, count=1)
    return text


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + " The regions: the import graph (Mermaid), the "
        "layout (every module's docstring) and the concept -> file table.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="example: python scripts/code_map.py            # rewrite docs/code-map.md\n"
               "         python scripts/code_map.py --check    # exit 1 if it is stale (tests/test_docs.py)",
    )
    parser.formatter_class = type("Formatter", (argparse.ArgumentDefaultsHelpFormatter,
                                                argparse.RawDescriptionHelpFormatter), {})
    parser.add_argument("--page", type=Path, default=Path("docs/code-map.md"),
                        help="the page to write, relative to --root")
    parser.add_argument("--root", type=Path, default=argparse.SUPPRESS,
                        help="the repository that holds delight_fairseq/ (default: the one this script is in)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and say so if the page differs from what the code gives")
    args = parser.parse_args(argv)
    args.root = getattr(args, "root", REPO)
    page = args.page if args.page.is_absolute() else args.root / args.page
    if not page.is_file():
        parser.error(f"no page {page}")
    text = page.read_text(encoding="utf-8")
    new = render(text, args.root)
    if args.check:
        if new != text:
            print(f"{page} is stale: run python scripts/code_map.py", file=sys.stderr)
            return 1
        print(f"{page} is up to date")
        return 0
    if new != text:
        page.write_text(new, encoding="utf-8")
        print(f"wrote {page}")
    else:
        print(f"{page} already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
