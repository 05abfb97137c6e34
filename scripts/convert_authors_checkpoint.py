#!/usr/bin/env python
"""Convert a checkpoint of the DeLighT authors' fairseq 0.9 fork (sacmehta/delight) to one
that fairseq-generate / fairseq-eval-lm --user-dir delight_fairseq load:

    python scripts/convert_authors_checkpoint.py FORK_CHECKPOINT OUT_CHECKPOINT

(also installed as ``delight-convert-checkpoint``; see ``delight_fairseq/checkpoints/convert.py``)."""
import sys

from delight_fairseq.checkpoints.convert import main

if __name__ == "__main__":
    sys.exit(main())
