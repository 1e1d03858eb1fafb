"""Scoring: sliding-window scores (`windows`), `detector eval/score/inspect` (`evaluate`), metrics as pure
functions (`metrics`), calibration, ONNX export and scoring (`onnx_export`), Ray-sharded scoring (`ray_executor`)."""
