"""Model importers: .tflite flatbuffers (tflite.py) and Keras / float models (keras.py)."""
