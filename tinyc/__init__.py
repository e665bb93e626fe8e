"""tinyc: Keras/TFLite models to bit-exact fixed-point C for microcontrollers."""

__version__ = "0.1.0"
