#!/usr/bin/env python
"""Convert a checkpoint of the DeLighT authors' fairseq 0.9 fork (sacmehta/delight) to one
that fairseq-generate / fairseq-eval-lm --user-dir delight_fairseq load:

    python scripts/convert_authors_checkpoint.py FORK_CHECKPOINT OUT_CHECKPOINT

(also installed as ``delight-convert-checkpoint``; see ``delight_fairseq/checkpoints/convert.py``)."""
import sys

from delight_fairseq.checkpoints.convert import main

EXAMPLE = "python scripts/convert_authors_checkpoint.py delight_wmt14_en_de.pt checkpoints/converted/checkpoint_best.pt"

if __name__ == "__main__":
    if {"-h", "--help"} & set(sys.argv[1:]):  # the converter's help, and an example after it
        try:
            main(["--help"])
        finally:
            print(f"\nexample:\n  {EXAMPLE}")
    sys.exit(main())
