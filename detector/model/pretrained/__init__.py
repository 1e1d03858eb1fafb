"""Published anti-spoofing countermeasures, loaded from their authors' on-disk format into hardspoof's own
modules: each is a `Detector` built from a ModelConfig, its weights mapped from the authors' state dict.

`registry.py` pins each entry (file, sha256, licence, training data, input convention, reported EER);
one module per architecture family maps that family's state dicts (`aasist.py`, ...).
"""
