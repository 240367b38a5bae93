"""The shop's knowledge: catalog models, loaders and the flat list of answerable entries."""

from .catalog import FAQ, Catalog, Product, Shop, load_catalog, load_faq_csv

__all__ = ["FAQ", "Catalog", "Product", "Shop", "load_catalog", "load_faq_csv"]
