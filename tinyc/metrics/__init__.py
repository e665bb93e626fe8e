"""Numbers about a model and its C: compression (sizes and rates), speed (against raw
weights), accuracy (float / int8 reference / generated C) and inspect (ops, parameters, MACs)."""
