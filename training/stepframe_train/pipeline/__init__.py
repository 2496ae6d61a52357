"""Training the miniature stack on the recipe world: autoencoder, CLIP encoders, text-only UNet, then each fuser."""
