"""Drawing helpers shared by the notebooks: offline sample images, token-score heatmaps, boxes, patch grids."""

from .maps import denormalize, draw_box, draw_token_grid, load_sample_images, overlay_scores, show_image

__all__ = ["denormalize", "draw_box", "draw_token_grid", "load_sample_images", "overlay_scores", "show_image"]
