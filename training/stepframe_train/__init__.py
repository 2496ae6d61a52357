"""stepframe's training side: miniature SD 1.x + CLIP models, the bundle exporter, and the recipe world."""
