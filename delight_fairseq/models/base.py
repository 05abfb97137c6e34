"""What every model the plugin registers shares, once: its config taken as its dataclass
whichever way fairseq hands it over, and a ``load_state_dict`` that says in one message why
a checkpoint does not fit (another architecture, size or dictionary)."""
from argparse import Namespace
from typing import Dict, Optional

import torch

from ..checkpoints.fit import check_fits

# where a model keeps the table whose rows are a dictionary's entries (a plain lookup, or the
# map under DeFINE / DExTra); adaptive inputs and Transformer-XL's tables are checked by shape
_TABLES = ("embed_tokens.weight", "embed_tokens.table.weight")


class PluginModel:
    """Mixed into each registered model, before its fairseq base class."""

    config_class: Optional[type] = None  # the model's dataclass (None: fairseq's argparse model)

    @classmethod
    def config(cls, cfg):
        """``cfg`` as the model's dataclass: fairseq's legacy API (``parse_args_and_arch``
        without Hydra) hands an argparse Namespace."""
        if cls.config_class is not None and isinstance(cfg, Namespace):
            return cls.config_class.from_namespace(cfg)
        return cfg

    def dictionary_tables(self) -> Dict[str, str]:
        """Description -> the parameter whose rows are that dictionary's entries."""
        own = dict(self.named_parameters())
        table = {side: next((f"{side}.{t}" for t in _TABLES if f"{side}.{t}" in own), None)
                 for side in ("encoder", "decoder")}
        if table["encoder"]:  # translation
            return {"source dictionary": table["encoder"], "target dictionary": table["decoder"]}
        return {"dictionary": table["decoder"]} if table["decoder"] else {}

    def upgrade_names(self, state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """A checkpoint's parameter names as this version names them (unchanged by default)."""
        return state_dict

    def load_state_dict(self, state_dict, strict=True, model_cfg=None, args=None):
        state_dict = self.upgrade_names(state_dict)
        if strict:
            check_fits(self, state_dict, self.dictionary_tables())
        return super().load_state_dict(state_dict, strict=strict, model_cfg=model_cfg, args=args)
