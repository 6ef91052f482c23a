"""``python -m clothparse.train ...`` = ``cpt train ...``; the entry point for torchrun:

    torchrun --nproc_per_node 2 -m clothparse.train --data DIR --out RUN --backbone small
"""

from __future__ import annotations

import typer

from clothparse.cli.cmd_train import train

if __name__ == "__main__":
    typer.run(train)
