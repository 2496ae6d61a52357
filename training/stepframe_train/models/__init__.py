"""Miniature PyTorch replicas of the Stable Diffusion 1.x stack (CLIP encoders, KL VAE, UNet) plus the paper's fusers."""
