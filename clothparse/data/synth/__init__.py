"""The synthetic "paper-doll" dataset: people wearing ModaNet garments, with full ground truth.

Modules, bottom-up: ``raster`` (polygon fill, shape helpers), ``textures`` (colours,
patterns), ``body`` (posed skeletons, skin and hair), ``garments`` (the 13 classes as
shapes on a skeleton, outfit sampler), ``background``, ``scene`` (layer stack,
occlusion, ground truth: ``render_scene``), ``coco`` (masks to COCO polygons) and
``writer`` (the dataset folder: ``write_dataset``).
"""
