"""``python -m lrlab ...`` runs the command line, e.g. under torchrun, which starts Python modules:

torchrun --nproc_per_node=2 -m lrlab train examples/tiny.toml --out runs/tiny-ddp
"""

from lrlab.cli import main

if __name__ == "__main__":
    main()
