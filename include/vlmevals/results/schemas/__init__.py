"""The result types, one module per resource: samples_compare (samples, compare), checkpoints (checkpoint scores).
Import from the module that defines a name."""
