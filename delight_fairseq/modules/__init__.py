"""DeLighT / DeFINE building blocks: plain ``torch.nn`` modules, usable without fairseq."""
from .block_scaling import block_scaling
from .define_embedding import DeFINEEmbedding, HierarchicalGroupTransform, hgt_schedule
from .delight_embedding import DeLighTEmbedding
from .delight_layer import DeLighTBlockConfig, DeLighTLayer
from .dextra import DExTra, DExTraConfig, default_max_groups, dextra_schedule
from .group_linear import GroupLinear, feature_shuffle
from .input_mixer import mix_inputs
from .light_ffn import LightFFN
from .sequence_dropout import SequenceDropout, sequence_dropout
from .single_head_attention import SingleHeadAttention

__all__ = [
    "block_scaling", "DeFINEEmbedding", "HierarchicalGroupTransform", "hgt_schedule", "DeLighTEmbedding", "SequenceDropout", "sequence_dropout", "DeLighTBlockConfig", "DeLighTLayer",
    "DExTra", "DExTraConfig", "default_max_groups", "dextra_schedule", "GroupLinear", "feature_shuffle",
    "mix_inputs", "LightFFN", "SingleHeadAttention",
]
