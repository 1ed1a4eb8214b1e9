"""The API's own representations, one module per kind: envelopes (lists, conflicts, cancellations, the user),
overall (suite triggers, the overall board). Import from the module that defines a name."""
