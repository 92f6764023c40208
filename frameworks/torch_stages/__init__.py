"""The lab's four PyTorch stages: manual, autograd, torch.nn, torch.optim.

Imported only when one of them is asked for (``frameworks.get("torch/...")``).
"""
