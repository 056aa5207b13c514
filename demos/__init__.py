"""The demos, shipped inside keras_lrkit_cli so that `lrkit demo NAME` works from a wheel."""
