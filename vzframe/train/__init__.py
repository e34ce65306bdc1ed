"""Training: the loss (``loss.py``) and the DeepSpeed trainer (``trainer.py``)."""
