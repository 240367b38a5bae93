"""Understanding one message: normalise it, classify its intent, resolve the product it is about."""
