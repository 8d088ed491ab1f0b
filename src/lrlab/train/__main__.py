"""``python -m lrlab.train CONFIG.toml [--set k=v ...] [--out DIR] [--resume]``, the entry point for torchrun:

torchrun --nproc_per_node=2 -m lrlab.train examples/tiny.toml --out runs/tiny-ddp
"""

import typer

from lrlab.cli.train import register

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
register(app)

if __name__ == "__main__":
    app()
