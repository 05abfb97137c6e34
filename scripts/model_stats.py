#!/usr/bin/env python
"""Parameters and MACs of a delight_transformer preset or checkpoint (the authors' counting).

    python scripts/model_stats.py --arch delight_transformer_wmt14_en_de_512 [--src-len 20 --tgt-len 20]
    python scripts/model_stats.py --checkpoint checkpoints/x/checkpoint_best.pt

Also installed as the console command ``delight-model-stats``.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from delight_fairseq.stats import main  # noqa: E402

if __name__ == "__main__":
    main()
