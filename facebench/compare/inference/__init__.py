"""Using a run's saved models: loading them under the trusted-types check, predict, and what each
method sees (the run's stored views and explain)."""

from facebench.compare.inference.explain import compute_run_views, compute_views, explain_image, load_methods
from facebench.compare.inference.loading import available_models, choose_models, default_models, load_model
from facebench.compare.inference.predict import predict_files, predict_image

__all__ = ["available_models", "choose_models", "compute_run_views", "compute_views", "default_models",
           "explain_image", "load_methods", "load_model", "predict_files", "predict_image"]
