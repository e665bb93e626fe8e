"""Graph passes: pure functions over the IR, no files, no TensorFlow, no printing: pruning
(prune.py), weight encodings (encode.py, huffman.py) and the compression pass that combines
them (compress.py)."""
