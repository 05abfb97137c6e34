"""Checkpoints of the DeLighT authors' fairseq 0.9 fork (sacmehta/delight) -> this plugin.

The fork saves ``args`` (an ``argparse.Namespace`` with its own option names) and a
``model`` state dict with its own parameter names. ``convert_checkpoint`` maps the options
to ``delight_transformer`` / ``define_lm`` options (everything derived from the stored
``args``, so any size converts), builds our model from them, maps every tensor to our
names and layouts, and writes a fairseq 0.12 checkpoint (``cfg`` + ``model``) that
``fairseq-generate`` / ``fairseq-eval-lm --user-dir delight_fairseq`` and
``checkpoint_utils.load_model_ensemble_and_task`` load with the fork's dictionaries.

Anything that cannot be mapped (an option we do not support, a tensor without a place)
stops with one ``ConfigError`` naming it, before anything is written; the output is
written under a temporary name and renamed, so a partial file never exists.

    python scripts/convert_authors_checkpoint.py FORK_CHECKPOINT OUT_CHECKPOINT
    delight-convert-checkpoint FORK_CHECKPOINT OUT_CHECKPOINT
"""
import argparse
import os
import re
import sys
import warnings
from types import SimpleNamespace
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch

from .. import models  # noqa: F401  (the models the converted checkpoints name)
from .atomic import written_whole
from ..modules.errors import ConfigError
from .safe_load import load_fork_checkpoint
from ..models.factory import dictionary_of_size

# The fork's module and parameter names -> ours, applied in order (a DExTra's inner names
# last, so that they apply inside blocks and embeddings alike).
_RENAMES: List[Tuple[str, str]] = [
    (r"\.embed_tokens\.map_layer\.embeddings\.(\d+)\.weight$", r".embed_tokens.table.embeddings.\1.0.weight"),
    (r"\.embed_tokens\.map_layer\.projections\.(\d+)\.weight$", r".embed_tokens.table.embeddings.\1.1.weight"),
    (r"\.embed_tokens\.map_layer\.", ".embed_tokens.table."),
    (r"\.embed_tokens\.dextra_layer\.", ".embed_tokens.expand."),
    (r"\.dextra_layer(_sa)?\.", ".dextra."),
    (r"\.dextra_layers\.", ".glt_layers."),
    (r"\.normalization_fn\.", ".norm."),
    (r"\.self_attn\.linear_kqv\.", ".self_attn.qkv_proj."),
    (r"\.encoder_attn\.linear_q\.", ".encoder_attn.q_proj."),
    (r"\.encoder_attn\.linear_kv\.", ".encoder_attn.kv_proj."),
    (r"\.self_attn_layer_norm\.", ".self_attn_norm."),
    (r"\.encoder_attn_layer_norm\.", ".encoder_attn_norm."),
    (r"\.final_layer_norm\.", ".ffn_norm."),
    (r"\.fc([12])\.", r".ffn.fc\1."),
    (r"\.weights$", ".weight"),
]
# where the two models put the same thing under other names
_TRANSLATION_RENAMES = [(r"^decoder\.project_out_dim\.", "decoder.output_proj."), (r"^decoder\.embed_out\.weight$", "decoder.output_weight")]
_LM_RENAMES = [(r"^decoder\.embed_out\.weight$", "decoder.output_projection.weight")]
# buffers the fork saves that are rebuilt from the model (fairseq's version markers, dtype carriers)
_FORK_BUFFERS = re.compile(r"(^|\.)(version|_float_tensor)$")


def our_name(fork_name: str, language_model: bool) -> str:
    """The parameter of our model that holds the fork's ``fork_name``."""
    name = "." + fork_name
    for pattern, replacement in _RENAMES:
        name = re.sub(pattern, replacement, name)
    name = name[1:]
    for pattern, replacement in _LM_RENAMES if language_model else _TRANSLATION_RENAMES:
        name = re.sub(pattern, replacement, name)
    return name


def _to_our_layout(fork: torch.Tensor, ours: torch.Tensor, name: str) -> torch.Tensor:
    """The fork's dense layers store ``out x in`` weights and ``out`` biases; ours are
    group layers with one group: ``1 x in x out`` and ``1 x 1 x out``."""
    if fork.shape == ours.shape:
        return fork
    if fork.dim() == 2 and ours.shape == (1, fork.shape[1], fork.shape[0]):
        return fork.t().unsqueeze(0)
    if fork.dim() == 1 and ours.shape == (1, 1, fork.shape[0]):
        return fork.view(1, 1, -1)
    raise ConfigError(f"the authors' {name} is {tuple(fork.shape)}, our model's is {tuple(ours.shape)}: "
                      "the checkpoint's options do not describe its weights")


def convert_state_dict(fork_state: Dict[str, torch.Tensor], model: torch.nn.Module, language_model: bool) -> Dict[str, torch.Tensor]:
    """``model``'s state dict filled with the fork's tensors (every parameter must be
    covered; buffers keep ``model``'s values)."""
    ours = model.state_dict()
    out, unknown = {}, []
    for fork_key, tensor in fork_state.items():
        if _FORK_BUFFERS.search(fork_key):
            continue
        key = our_name(fork_key, language_model)
        if key not in ours:
            unknown.append(f"{fork_key} (-> {key})")
            continue
        out[key] = _to_our_layout(tensor, ours[key], fork_key).to(ours[key].dtype).contiguous()
    params = {name for name, _ in model.named_parameters(remove_duplicate=False)}
    missing = sorted(k for k in ours if k in params and k not in out)
    if unknown or missing:
        raise ConfigError(
            "the authors' checkpoint does not map onto our model: "
            + (f"{len(unknown)} of its tensors have no place in ours (e.g. {unknown[0]})" if unknown else "")
            + ("; " if unknown and missing else "")
            + (f"{len(missing)} of our parameters are not in it (e.g. {missing[0]})" if missing else "")
        )
    return {k: out.get(k, v) for k, v in ours.items()}


# ----- options ---------------------------------------------------------------------------

def _unsupported(args, checks: List[Tuple[str, Callable[[object], bool], str]]) -> None:
    for name, is_bad, why in checks:
        if hasattr(args, name) and is_bad(getattr(args, name)):
            raise ConfigError(f"the authors' checkpoint uses --{name.replace('_', '-')} {getattr(args, name)!r}, "
                              f"which this plugin does not support ({why}); it cannot be converted")


_COMMON_CHECKS = [
    ("define_iclr", bool, "the ICLR'20 DeFINE unit inside DeLighT blocks"),
    ("norm_type", lambda v: v != "ln", "only LayerNorm ('ln') is implemented as theirs"),
    ("act_type", lambda v: v not in ("swish", "gelu", "relu"), "activations: swish, gelu, relu"),
    ("no_scale_embedding", bool, "the lookup is always scaled by sqrt(map dim), as their default"),
    ("delight_enc_scaling", lambda v: v not in ("block", "uniform"), "block or uniform scaling"),
    ("delight_dec_scaling", lambda v: v not in ("block", "uniform"), "block or uniform scaling"),
]


def _shared_options(args) -> Dict[str, object]:
    """Options both models take, from the fork's names."""
    return {
        "embed_depth": args.delight_emb_depth,
        "embed_width_mult": float(args.delight_emb_width_mult),
        "embed_max_groups": args.delight_emb_max_groups,
        "embed_dropout": args.delight_emb_dropout,
        "pos_dropout": args.pe_dropout,
        "dropout": args.dropout,
        "attention_dropout": args.attention_dropout,
        "activation_dropout": getattr(args, "activation_dropout", 0.0) or getattr(args, "relu_dropout", 0.0),
        "dextra_dropout": args.delight_dropout,
        "ffn_dropout": args.ffn_dropout,
        "no_glt_shuffle": not getattr(args, "glt_shuffle", not getattr(args, "no_glt_shuffle", False)),
        "dextra_schedule": "code",
    }


def translation_options(args) -> Dict[str, object]:
    """``delight_transformer`` options for the fork's ``delight_transformer`` args."""
    _unsupported(args, _COMMON_CHECKS + [
        ("adaptive_input", bool, "translation models look tokens up in one table"),
        ("adaptive_softmax_cutoff", lambda v: v is not None, "translation models score the whole vocabulary"),
        ("encoder_learned_pos", bool, "positions are sinusoidal"),
        ("decoder_learned_pos", bool, "positions are sinusoidal"),
        ("no_token_positional_embeddings", bool, "positions are always added"),
        ("no_cross_attention", bool, "decoder blocks attend to the encoder"),
    ])
    if bool(args.encoder_normalize_before) != bool(args.decoder_normalize_before):
        raise ConfigError("the authors' checkpoint normalises before in one stack only (--encoder-normalize-before "
                          f"{args.encoder_normalize_before}, --decoder-normalize-before {args.decoder_normalize_before}); "
                          "this plugin has one --normalize-before for both")
    out = _shared_options(args)
    out.update({
        "embed_map_dim": args.delight_emb_map_dim,
        "activation_fn": args.act_type,
        "norm_type": args.norm_type,
        "normalize_before": bool(args.encoder_normalize_before),
        "share_all_embeddings": bool(args.share_all_embeddings),
        "share_decoder_input_output_embed": bool(args.share_decoder_input_output_embed),
        "max_source_positions": args.max_source_positions,
        "max_target_positions": args.max_target_positions,
    })
    for side, short in (("encoder", "enc"), ("decoder", "dec")):
        out.update({
            f"{side}_embed_dim": args.delight_emb_out_dim,
            f"{side}_blocks": getattr(args, f"delight_{short}_layers"),
            f"{side}_min_depth": getattr(args, f"delight_{short}_min_depth"),
            f"{side}_max_depth": getattr(args, f"delight_{short}_max_depth"),
            f"{side}_width_mult": float(getattr(args, f"delight_{short}_width_mult")),
            f"{side}_max_groups": getattr(args, f"delight_{short}_max_groups"),
            f"{side}_ffn_reduction": getattr(args, f"delight_{short}_ffn_red"),
        })
    return out


def language_model_options(args) -> Dict[str, object]:
    """``define_lm`` options for the fork's ``delight_transformer_lm`` args."""
    _unsupported(args, _COMMON_CHECKS + [
        ("decoder_layers_to_keep", lambda v: v is not None, "every block is kept"),
        ("decoder_layerdrop", bool, "no LayerDrop in DeLighT blocks"),
        ("character_embeddings", bool, "tokens are looked up, not spelled"),
    ])
    out = _shared_options(args)
    out.update({
        "block_type": "delight",
        "delight_embedding": True,
        "decoder_input_dim": args.delight_emb_map_dim,
        "decoder_embed_dim": args.delight_emb_out_dim,
        "decoder_output_dim": args.delight_emb_map_dim,  # the fork projects d_m -> map dim before the output
        "decoder_layers": args.delight_dec_layers,
        "delight_min_depth": args.delight_dec_min_depth,
        "delight_max_depth": args.delight_dec_max_depth,
        "delight_width_mult": float(args.delight_dec_width_mult),
        "delight_max_groups": args.delight_dec_max_groups,
        "delight_ffn_reduction": args.delight_dec_ffn_red,
        "delight_activation_fn": args.act_type,
        "decoder_normalize_before": True,  # the fork forces it
        "no_decoder_final_norm": bool(getattr(args, "no_decoder_final_norm", False)),
        "decoder_learned_pos": bool(getattr(args, "decoder_learned_pos", False)),
        "no_token_positional_embeddings": bool(getattr(args, "no_token_positional_embeddings", False)),
        "share_decoder_input_output_embed": bool(getattr(args, "share_decoder_input_output_embed", False)),
        "adaptive_input": bool(args.adaptive_input),
        "adaptive_input_style": "delight",
        "adaptive_input_factor": float(getattr(args, "adaptive_input_factor", 2)),
        "adaptive_input_cutoff": getattr(args, "adaptive_input_cutoff", None),
        "adaptive_softmax_cutoff": getattr(args, "adaptive_softmax_cutoff", None),
        "adaptive_softmax_dropout": float(getattr(args, "adaptive_softmax_dropout", 0.0)),
        "adaptive_softmax_factor": float(getattr(args, "adaptive_softmax_factor", 4)),
        "tie_adaptive_weights": bool(getattr(args, "tie_adaptive_weights", False)),
        "tie_adaptive_proj": bool(getattr(args, "tie_adaptive_proj", False)),
        "add_bos_token": bool(getattr(args, "add_bos_token", False)),
    })
    return out


def _task_of(args) -> str:
    """The fork's models are ``delight_transformer`` (translation) and ``delight_transformer_lm``,
    each with its named architectures; any other architecture is another model's checkpoint."""
    arch = str(getattr(args, "arch", ""))
    if arch.startswith("delight_transformer_lm"):
        return "language_modeling"
    if arch.startswith("delight_transformer"):
        return "translation"
    raise ConfigError(f"the checkpoint's architecture {arch!r} (task {getattr(args, 'task', None)!r}) is not one of the "
                      "authors' DeLighT models (delight_transformer*, delight_transformer_lm*): it cannot be converted")


def fairseq_cfg(args) -> Tuple[object, str]:
    """Our fairseq config (an omegaconf ``FairseqConfig``) for the fork's ``args``, and the task."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    task = _task_of(args)
    lm = task == "language_modeling"
    model_options = language_model_options(args) if lm else translation_options(args)
    if lm:
        task_options = {"tokens_per_sample": getattr(args, "tokens_per_sample", 512),
                        "max_target_positions": getattr(args, "max_target_positions", None)}
    else:
        task_options = {"source_lang": args.source_lang, "target_lang": args.target_lang,
                        "left_pad_source": bool(getattr(args, "left_pad_source", True)),
                        "left_pad_target": bool(getattr(args, "left_pad_target", False)),
                        "max_source_positions": args.max_source_positions,
                        "max_target_positions": args.max_target_positions}
    command = [getattr(args, "data", None) or "DATA", "--task", task, "--arch", "define_lm" if lm else "delight_transformer"]
    namespace = options.parse_args_and_arch(options.get_training_parser(default_task=task), command)
    for key, value in {**task_options, **model_options}.items():
        setattr(namespace, key, value)
    with warnings.catch_warnings():  # Hydra's deprecation notices from inside fairseq's conversion
        warnings.simplefilter("ignore")
        return convert_namespace_to_omegaconf(namespace), task


def build_model(cfg, dictionaries: Dict[str, object]):
    """Our model for a converted config, over the given fairseq dictionaries
    (``source``/``target`` for translation, ``target`` for a language model)."""
    from fairseq.models import ARCH_MODEL_REGISTRY

    task = SimpleNamespace(source_dictionary=dictionaries.get("source", dictionaries["target"]),
                           target_dictionary=dictionaries["target"])
    return ARCH_MODEL_REGISTRY[cfg.model._name].build_model(cfg.model, task)


def _dictionary_sizes(fork_state: Dict[str, torch.Tensor], lm: bool) -> Dict[str, int]:
    """The dictionary sizes the weights were trained with (rows of the lookup tables)."""
    if lm:
        bands = sorted((k for k in fork_state if re.fullmatch(r"decoder\.embed_tokens\.map_layer\.embeddings\.\d+\.weight", k)))
        if bands:
            return {"target": sum(fork_state[k].shape[0] for k in bands)}
        tables = {"target": "decoder.embed_tokens.map_layer.weight"}
    else:
        tables = {"source": "encoder.embed_tokens.map_layer.weight", "target": "decoder.embed_tokens.map_layer.weight"}
    missing = [k for k in tables.values() if k not in fork_state]
    if missing:
        raise ConfigError(f"the checkpoint's weights have no {missing[0]} (the lookup table its options describe): "
                          "a damaged checkpoint, or another model's")
    return {side: fork_state[k].shape[0] for side, k in tables.items()}


def _plain(value):
    """``value`` if it is made of plain Python data (loadable with ``weights_only``), else None."""
    if isinstance(value, np.generic):  # fairseq 0.9 saved NumPy scalars (e.g. a loss)
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return None if any(i is None and v is not None for i, v in zip(items, value)) else type(value)(items)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if _plain(v) is not None or v is None}
    return None


def load_authors_checkpoint(path: str) -> dict:
    """The fork's checkpoint, read without running code from it (``safe_load``), its
    ``args`` wrapped so that a missing option is one clear error."""
    state = load_fork_checkpoint(path)
    if "model" not in state or not isinstance(state.get("args"), argparse.Namespace):
        kind = "a fairseq 0.12 checkpoint (it has 'cfg'): it needs no conversion" if state.get("cfg") else \
            "not a checkpoint of the authors' fork (no 'args' Namespace and 'model' state dict)"
        raise ConfigError(f"{path} is {kind}")
    if not isinstance(state["model"], dict) or not all(isinstance(v, torch.Tensor) for v in state["model"].values()):
        raise ConfigError(f"{path}: its 'model' is not a state dict of tensors")
    state["args"] = ForkArgs(state["args"], path)
    return state


class MissingOption(ConfigError, AttributeError):
    """An option the fork's checkpoint does not hold: a ``ConfigError`` where it is needed,
    an ``AttributeError`` for ``getattr(args, name, default)`` and ``hasattr``."""


class ForkArgs(argparse.Namespace):
    """The fork's stored options; reading one it does not hold raises ``MissingOption``
    naming it (a damaged checkpoint, or one of another fairseq model)."""

    def __init__(self, namespace: argparse.Namespace, path: str):
        super().__init__(**vars(namespace))
        self._path = path

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise MissingOption(f"{self._path}: its stored options (args) lack --{name.replace('_', '-')}, which every "
                          "checkpoint of the authors' DeLighT models holds: a damaged checkpoint, or another model's")


def convert(state: dict):
    """``(cfg, model, state dict)`` for a loaded checkpoint of the fork."""
    cfg, task = fairseq_cfg(state["args"])
    lm = task == "language_modeling"
    sizes = _dictionary_sizes(state["model"], lm)
    if not lm and cfg.model.share_all_embeddings and sizes["source"] != sizes["target"]:
        raise ConfigError(
            f"the checkpoint's options share all embeddings (--share-all-embeddings), but its source table has "
            f"{sizes['source']:,} rows and its target table {sizes['target']:,}: one table cannot serve both; "
            "a converted model could not load (retrain with a joined dictionary, or fix the stored args)")
    model = build_model(cfg, {k: dictionary_of_size(n) for k, n in sizes.items()})
    return cfg, model, convert_state_dict(state["model"], model, lm)


def convert_checkpoint(src: str, dst: str, overwrite: bool = False) -> dict:
    """Convert the fork's checkpoint ``src`` to ours at ``dst``; returns a summary."""
    from omegaconf import OmegaConf

    if os.path.exists(dst) and not overwrite:
        raise ConfigError(f"{dst} exists: choose another output path (or pass --overwrite)")
    state = load_authors_checkpoint(src)
    cfg, model, model_state = convert(state)
    model.load_state_dict(model_state)  # our model takes every tensor (shapes checked)
    history = [h for h in (_plain(h) for h in state.get("optimizer_history") or []) if h] or [{}]
    history[-1].setdefault("num_updates", 0)
    out = {
        "args": None,
        "cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
        "model": model_state,
        "criterion": {},
        "optimizer_history": history,
        "task_state": {},
        "extra_state": _plain(state.get("extra_state")) or {},
        "last_optimizer_state": None,  # the fork's optimizer state names the fork's parameters
    }
    with written_whole(dst) as tmp:
        torch.save(out, tmp)
    return {"task": cfg.task._name, "model": cfg.model._name, "params": sum(p.numel() for p in model.parameters())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Convert a checkpoint of the DeLighT authors' fairseq 0.9 fork to delight_fairseq.")
    p.add_argument("src", help="checkpoint written by the authors' fork (sacmehta/delight)")
    p.add_argument("dst", help="where to write the converted checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    a = p.parse_args(argv)
    try:
        summary = convert_checkpoint(a.src, a.dst, a.overwrite)
    except ConfigError as e:
        print(f"delight_fairseq: {e}", file=sys.stderr)
        return 1
    print(f"wrote {a.dst}: {summary['model']} for {summary['task']}, {summary['params']:,} parameters; load it with "
          f"--user-dir delight_fairseq and the fork's dictionaries in the data directory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
