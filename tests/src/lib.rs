//! Helpers shared by weft's end-to-end tests: where the built plugins are, temp pipelines.
