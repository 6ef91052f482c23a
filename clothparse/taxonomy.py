"""The ModaNet taxonomy and the label-map conventions, in one place.

Clothing class ids are ModaNet's (1-13). Parsing label maps use:
0 = background, 1-13 = clothing classes, 14 = skin/body (person not covered by
clothing). Everything that needs a class name, id or colour imports it from here;
engines read class names from model metadata instead (see ``clothparse.model.checkpoint``).
"""

from __future__ import annotations

import numpy as np

#: ModaNet category names in id order; index i holds the name of class id i + 1.
MODANET_CLASSES: tuple[str, ...] = (
    "bag",
    "belt",
    "boots",
    "footwear",
    "outer",
    "dress",
    "sunglasses",
    "pants",
    "top",
    "shorts",
    "skirt",
    "headwear",
    "scarf/tie",
)
NUM_CLOTHING_CLASSES = len(MODANET_CLASSES)  # 13

BACKGROUND_LABEL = 0
#: Label of body pixels (skin, hair, anything of the person that is not clothing).
BODY_LABEL = 14
NUM_PARSING_LABELS = 15  # 0..14

#: Names of every parsing label, index = label value.
PARSING_LABELS: tuple[str, ...] = ("background", *MODANET_CLASSES, "skin/body")

#: COCO category id and name of the person class (torchvision's 91-index numbering).
COCO_PERSON_ID = 1
COCO_PERSON_NAME = "person"

#: One fixed RGB colour per parsing label, uint8 [15, 3], RGB order.
PALETTE = np.array(
    [
        (0, 0, 0),  # background
        (230, 25, 75),  # bag
        (245, 130, 48),  # belt
        (128, 64, 0),  # boots
        (255, 225, 25),  # footwear
        (0, 130, 200),  # outer
        (240, 50, 230),  # dress
        (70, 240, 240),  # sunglasses
        (0, 0, 128),  # pants
        (60, 180, 75),  # top
        (170, 255, 195),  # shorts
        (145, 30, 180),  # skirt
        (210, 245, 60),  # headwear
        (128, 128, 0),  # scarf/tie
        (250, 190, 212),  # skin/body
    ],
    dtype=np.uint8,
)


def class_name(class_id: int) -> str:
    """Name of a ModaNet class id (1-13). Raises ValueError outside that range."""
    if not 1 <= class_id <= NUM_CLOTHING_CLASSES:
        raise ValueError(f"class id {class_id} is not a ModaNet class (1-{NUM_CLOTHING_CLASSES})")
    return MODANET_CLASSES[class_id - 1]


def class_id(name: str) -> int:
    """ModaNet id (1-13) of a class name. Raises ValueError for unknown names."""
    try:
        return MODANET_CLASSES.index(name) + 1
    except ValueError:
        raise ValueError(f"unknown ModaNet class {name!r}; known: {', '.join(MODANET_CLASSES)}") from None


def coco_categories() -> list[dict[str, object]]:
    """COCO ``categories`` entries for ModaNet (ids 1-13)."""
    return [
        {"id": i + 1, "name": n, "supercategory": "fashion"} for i, n in enumerate(MODANET_CLASSES)
    ]


def person_categories() -> list[dict[str, object]]:
    """COCO ``categories`` entry for the body (person) annotations."""
    return [{"id": COCO_PERSON_ID, "name": COCO_PERSON_NAME, "supercategory": "person"}]


def palette_flat() -> list[int]:
    """The palette as a flat 768-entry list for ``PIL.Image.putpalette`` (unused entries black)."""
    flat = PALETTE.reshape(-1).tolist()
    return flat + [0] * (768 - len(flat))
