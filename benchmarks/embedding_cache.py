#!/usr/bin/env python
"""DeFINE's inference-time caching (DeFINE Sec. 3.4), measured: the WikiText-103 LSTM with
DeFINE (R3, ``define_lstm_lm_wiki103_r3``) evaluated with its DeFINE embedding computed
(uncached) and looked up in one ``V x 256`` table (cached: ``cache_embeddings``), against
the same LSTM without DeFINE (R2, ``define_lstm_lm_wiki103_r2``, an adaptive input of the
same width) -- the paper counts R2 and R3 as equal in inference cost. Side by side in one
process: the embedding alone and the whole forward pass (eval mode, log-probabilities of
every token through the adaptive softmax), tokens/s, median of rounds; prints ratios.

    python benchmarks/embedding_cache.py [--vocab 267744] [--batch 16 --length 64] [--device cuda]
"""
import argparse
import statistics
import sys
import textwrap
import time
from types import SimpleNamespace

import torch



def build(arch: str, vocab: int, device: str, cached: bool = False):
    import delight_fairseq.models  # noqa: F401  (registers the presets)
    from delight_fairseq.models.builders import cache_word_embeddings
    from delight_fairseq.models.define_lstm_lm import DefineLSTMLanguageModel
    from delight_fairseq.models.factory import dictionary_of_size, preset_config

    cfg = preset_config(arch, {})
    cfg.max_target_positions = None
    d = dictionary_of_size(vocab)
    torch.manual_seed(0)
    model = DefineLSTMLanguageModel.build_model(cfg, SimpleNamespace(source_dictionary=d, target_dictionary=d))
    model = model.to(device).eval()
    return cache_word_embeddings(model, SimpleNamespace(cache_embeddings=cached))


def tokens_per_second(fn, tokens: torch.Tensor, rounds: int, steps: int, device: str) -> float:
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    times = []
    with torch.inference_mode():
        fn(tokens)  # warm-up (and the cached table built)
        for _ in range(rounds):
            sync()
            start = time.perf_counter()
            for _ in range(steps):
                fn(tokens)
            sync()
            times.append(time.perf_counter() - start)
    return tokens.numel() * steps / statistics.median(times)


class _Help(argparse.RawDescriptionHelpFormatter):
    """The description as written; each option's default where it has one and its help does not say it."""

    def _split_lines(self, text, width):  # no break after a hyphen: en-de, data-bin stay whole
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _get_help_string(self, action):
        text, default = action.help or "", action.default
        if default is None or default is False or default is argparse.SUPPRESS or default == [] or "default" in text:
            return text
        return f"{text} (default: %(default)s)".strip()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_Help,
                                epilog="example:\n  python benchmarks/embedding_cache.py --batch 16 --length 64 --device cuda")
    p.add_argument("--vocab", type=int, default=267_744, help="dictionary size (WikiText-103's in fairseq)")
    p.add_argument("--batch", type=int, default=16, help="sequences per forward pass")
    p.add_argument("--length", type=int, default=64, help="tokens per sequence")
    p.add_argument("--steps", type=int, default=1, help="forward passes per timing")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda (cuda when available)")
    args = p.parse_args(argv)
    models = {
        "R2: adaptive input (no DeFINE)": build("define_lstm_lm_wiki103_r2", args.vocab, args.device),
        "R3: DeFINE, computed": build("define_lstm_lm_wiki103_r3", args.vocab, args.device),
        "R3: DeFINE, cached": build("define_lstm_lm_wiki103_r3", args.vocab, args.device, cached=True),
    }
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(4, args.vocab, (args.batch, args.length), generator=g).to(args.device)
    with torch.inference_mode():  # the cached model gives the computed one's log-probs
        a, b = (m.get_normalized_probs(m(tokens[:2, :16]), log_probs=True) for m in list(models.values())[1:])
        assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()

    def forward(model):
        return lambda t: model.get_normalized_probs(model(t), log_probs=True)

    rows = []
    for name, model in models.items():
        embed = tokens_per_second(model.decoder.embed_tokens, tokens, args.rounds, args.steps * 4, args.device)
        whole = tokens_per_second(forward(model), tokens, args.rounds, args.steps, args.device)
        rows.append((name, embed, whole))
    base = rows[0]
    print(f"device {args.device}, vocabulary {args.vocab:,}, {args.batch} x {args.length} tokens, eval mode, "
          f"median of {args.rounds}")
    print("| model | embedding tokens/s | vs R2 | forward tokens/s | vs R2 |")
    print("| --- | --- | --- | --- | --- |")
    for name, embed, whole in rows:
        print(f"| {name} | {embed:,.0f} | {embed / base[1]:.2f}x | {whole:,.0f} | {whole / base[2]:.2f}x |")
    computed, cached = rows[1], rows[2]
    print(f"caching DeFINE: embedding {cached[1] / computed[1]:.2f}x, whole forward {cached[2] / computed[2]:.2f}x "
          f"faster than computing it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
