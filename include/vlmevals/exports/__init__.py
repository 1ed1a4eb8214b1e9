"""Deliver eval results to the experiment trackers teams already watch (MLflow, TensorBoard).

The run life cycle writes one `export_outbox` row per configured exporter in the transaction that completes or
fails a run (vlmevals.runs.export_outbox); `deliver_pending` (the `deliver_exports` DAG) sends due rows with
backoff, so a tracker that is down delays delivery and never touches an eval run. Each exporter finds its
tracker run again by our run id, so delivering twice writes once.
"""
