"""Retrieval: embedders, the faiss index over FAQ keys, and the decision to answer or abstain."""
