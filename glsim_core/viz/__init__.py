"""Drawing helpers shared by the notebooks: offline sample images, token-score heatmaps, boxes, patch grids."""

from .explorer import MapExplorer, map_explorer, maps_figure, widget_frontend_available
from .maps import denormalize, draw_box, draw_token_grid, load_sample_images, overlay_scores, show_image

__all__ = ["MapExplorer", "denormalize", "draw_box", "draw_token_grid", "load_sample_images", "map_explorer",
           "maps_figure", "overlay_scores", "show_image", "widget_frontend_available"]
