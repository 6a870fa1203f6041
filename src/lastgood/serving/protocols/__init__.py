"""Wire formats the data plane speaks besides its own, each a thin translation onto the same
`Predictions` call: Open Inference Protocol v2 (`oip`), MLflow scoring (`mlflow_scoring`) and
KServe v1 (`kserve_v1`)."""
