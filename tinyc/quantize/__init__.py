"""Float models -> full-int8 `.tflite`, with TensorFlow (imported lazily): Keras and float
.tflite conversion (keras.py, float_tflite.py), calibration data (calibration.py), the
per-layer SQNR report (sqnr.py), pruning while fine-tuning a Keras model (finetune.py), and
the entry `prepare_int8` / `quantize_float` (prepare.py)."""
