"""``python -m scales_edge`` runs the CLI (so ``torchrun -m scales_edge train ...`` works)."""

from .cli import app

app()
