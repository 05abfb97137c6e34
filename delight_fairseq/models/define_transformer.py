"""``define_transformer``: fairseq's ``transformer`` for translation whose input embeddings
are DeFINE (Mehta et al., ICLR 2020, Sec. 4.2, Table 3): a ``V x n`` lookup, a
hierarchical group transform ``n -> k`` and a reduction ``k -> d``; the tied output layer
projects the decoder's ``d`` features to ``n`` (``d -> n``, without bias) and takes logits
against the same ``V x n`` table.

Everything else is fairseq's ``transformer`` (``TransformerModel``): its options, its
``--arch`` presets and its encoder and decoder; only ``build_embedding`` changes, and with
``--define-embedding`` the decoder's output dim becomes ``n`` (so fairseq adds its own
``d -> n`` ``project_out_dim``) and the embeddings are not scaled by ``sqrt(d)`` (the
DeFINE map scales its lookup by ``sqrt(n)``).

Legend: ``V`` vocabulary, ``n`` map dim, ``k`` expanded dim, ``d`` model dim.
"""
from argparse import Namespace
from dataclasses import dataclass, field

from fairseq.dataclass.utils import gen_parser_from_dataclass
from fairseq.models import register_model, register_model_architecture
from fairseq.models.transformer import TransformerModel
from fairseq.models.transformer.transformer_legacy import base_architecture, transformer_wmt_en_de
from fairseq.utils import safe_getattr
from omegaconf import OmegaConf

from .base import PluginModel
from .builders import cache_word_embeddings, define_embedding, lookup_table, option_flag, preset_arch
from .options import DeFINEHostOptions, check_define_host, raise_if


@dataclass
class DefineTransformerOptions(DeFINEHostOptions):
    define_map_dim: int = field(default=128, metadata={"help": "DeFINE map dim n: the width of the lookup table"})


def define_defaults(args) -> None:
    """Every DeFINE option not given takes its default (fairseq's ``transformer`` options
    are filled by its own arch functions)."""
    for name, value in vars(DefineTransformerOptions()).items():
        if not name.startswith("_"):
            setattr(args, name, safe_getattr(args, name, value))


@register_model("define_transformer")
class DefineTransformerModel(PluginModel, TransformerModel):
    """fairseq's argparse ``transformer`` (its options, presets and Namespace config: the one
    model here without a dataclass, as fairseq's own) with DeFINE embeddings."""

    @classmethod
    def add_args(cls, parser):
        super().add_args(parser)
        # no defaults on the parser, so that the --arch presets can set them (define_defaults fills the rest)
        gen_parser_from_dataclass(parser, DefineTransformerOptions(), delete_default=True)

    @classmethod
    def build_model(cls, args, task):
        if OmegaConf.is_config(args):  # Hydra's model config: fairseq's transformer reads extra options from a Namespace
            args = Namespace(**OmegaConf.to_container(args, resolve=True))
        define_defaults(args)
        if args.define_embedding:
            base_architecture(args)
            errors = []
            for side in ("encoder", "decoder"):
                errors += check_define_host(args, args.define_map_dim, getattr(args, f"{side}_embed_dim"),
                                            option_flag(f"{side}_embed_dim"))
            raise_if(errors, "define_transformer")
            args.no_scale_embedding = True  # the map scales its own lookup by sqrt(n)
            if args.share_all_embeddings or args.share_decoder_input_output_embed:
                args.decoder_output_dim = args.define_map_dim  # d -> n, then logits against the V x n table
        return cache_word_embeddings(super().build_model(args, task), args)

    @classmethod
    def build_embedding(cls, args, dictionary, embed_dim, path=None):
        """Tokens ``B x T`` -> ``B x T x d``: DeFINE over a ``V x n`` lookup, or fairseq's
        lookup without ``--define-embedding``."""
        if not args.define_embedding:
            return super().build_embedding(args, dictionary, embed_dim, path)
        table = lookup_table(dictionary, args.define_map_dim)
        return define_embedding(args, table, embed_dim, args.define_activation_fn, args.define_dropout)


# The DeFINE paper's WMT'14 En-De systems (Table 3): the Transformer base (fairseq's
# transformer_wmt_en_de: d 512, FFN 2048, 6 + 6 layers, 8 heads, dropout 0.1, one joined
# dictionary shared by encoder, decoder and output), and the same with DeFINE embeddings
# n 128 -> k 1024 -> d 512 over N = 3 layers (4, 2, 1 groups).
DEFINE_TRANSFORMER_PRESETS = {
    "define_transformer_wmt_en_de_baseline": dict(share_all_embeddings=True),
    # the paper's 92M baseline (OpenNMT's Transformer base): separate source, target and output
    # tables; its vocabulary is not stated (92M implies three tables of ~31k words)
    "define_transformer_wmt_en_de_baseline_separate": dict(share_all_embeddings=False,
                                                          share_decoder_input_output_embed=False),
    "define_transformer_wmt_en_de": dict(
        share_all_embeddings=True, define_embedding=True, define_map_dim=128, define_expand_dim=1024, define_depth=3,
        define_max_groups=4,
    ),
    # small, for quick experiments on a CPU
    "define_transformer_small": dict(
        share_all_embeddings=True, define_embedding=True, define_map_dim=32, define_expand_dim=128, define_depth=2,
        define_max_groups=2, encoder_embed_dim=64, decoder_embed_dim=64, encoder_ffn_embed_dim=128,
        decoder_ffn_embed_dim=128, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4,
    ),
}
for _name, _values in DEFINE_TRANSFORMER_PRESETS.items():
    register_model_architecture("define_transformer", _name)(preset_arch(_values, then=transformer_wmt_en_de))
register_model_architecture("define_transformer", "define_transformer")(base_architecture)
