"""The delivery guarantee: at-least-once input, exact results (docs/delivery.md), owned by one object."""
