"""ONNX export with the model card, parity check, int8 quantisation and the RDK X5 BPU bundle."""
