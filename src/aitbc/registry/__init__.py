"""The GPU registry's write side and its HTTP routes: registering, changing and delisting a
GPU, above the read model in ``aitbc.gpus`` (lists, details, cards) that miners and pricing
build on."""
